import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";
import { slugify } from "./handlers/topics_common.ts";

Deno.test("[catalog] slugify keeps letters and digits of every script", async (t) => {
  await t.step("Latin names keep the slugs they had: lowercased, accents folded", () => {
    assert.equal(slugify("Science & Tech!"), "science-tech");
    assert.equal(slugify("Café  Crème"), "cafe-creme");
    assert.equal(slugify("İstanbul Ünİ"), "istanbul-uni");
    assert.equal(slugify("ﬁve ①"), "five-1");
    assert.equal(slugify("!!!"), "");
  });

  await t.step("other scripts are kept, lowercased, their marks intact", () => {
    assert.equal(slugify("Наука"), "наука");
    assert.equal(slugify("Новый  Год"), "новый-год");
    assert.equal(slugify("物理学"), "物理学");
    assert.equal(slugify("ゲーム・デザイン"), "ゲーム-デザイン");
    assert.equal(slugify("한국어 문학"), "한국어-문학");
    assert.equal(slugify("विज्ञान"), "विज्ञान");
    assert.equal(slugify("Φυσική"), "φυσική");
    assert.equal(slugify("\u0301abc"), "abc", "a mark with no letter before it is dropped");
  });

  await t.step("a long name is cut to 200 characters, never ending in a dash", () => {
    const slug = slugify(`${"a".repeat(199)} & more`);
    assert.equal(slug, "a".repeat(199));
    assert.equal(slugify("b".repeat(250)), "b".repeat(200));
  });
});

Deno.test("[catalog] topics and sub-topics named in non-Latin scripts get slugs", async (t) => {
  await using system = await startTestSystem();
  const admin = system.admin.token;
  let topicId = "";

  await t.step("POST /v1/event-topics with a Cyrillic name is 201", async () => {
    const reply = await system.call("POST", "/v1/event-topics", {
      token: admin,
      body: { data: { type: "event-topic", attributes: { name: "Наука" } } },
    });
    expectStatus(reply, 201);
    topicId = reply.body.data.id;
    assert.equal(reply.body.data.attributes.slug, "наука");
  });

  await t.step("the same name in other case is the same slug: 409", async () => {
    expectError(
      await system.call("POST", "/v1/event-topics", {
        token: admin,
        body: { data: { type: "event-topic", attributes: { name: "НАУКА" } } },
      }),
      409,
    );
  });

  await t.step("POST /v1/event-sub-topics with a Chinese name is 201", async () => {
    const reply = await system.call("POST", "/v1/event-sub-topics", {
      token: admin,
      body: {
        data: {
          type: "event-sub-topic",
          attributes: { name: "物理学" },
          relationships: { "event-topic": { data: { type: "event-topic", id: topicId } } },
        },
      },
    });
    expectStatus(reply, 201);
    assert.equal(reply.body.data.attributes.slug, "物理学");
  });

  await t.step("a filter finds a topic by its slug", async () => {
    const filter = JSON.stringify([{ name: "slug", op: "eq", val: "наука" }]);
    const reply = await system.call(
      "GET",
      `/v1/event-topics?filter=${encodeURIComponent(filter)}`,
    );
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.map((topic: { id: string }) => topic.id), [topicId]);
  });
});
