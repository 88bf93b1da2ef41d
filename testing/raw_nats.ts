/**
 * Publishes over the NATS protocol itself, for messages nats.js refuses to make: a header block
 * that is not valid (a name with a space), as another client or a hostile one may send. The
 * server carries header bytes as they are.
 *
 * @example
 * ```ts ignore
 * await publishRaw("nats://127.0.0.1:4222", "t.facts.x", { headers: "Bad Name: 1", payload: "{}" });
 * ```
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends one HPUB with `headers` (lines without the NATS/1.0 status line) and waits for a PONG. */
export async function publishRaw(
  url: string,
  subject: string,
  message: { headers: string; payload: string },
): Promise<void> {
  const { hostname, port } = new URL(url.split(",")[0]);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const head = encoder.encode(`NATS/1.0\r\n${message.headers}\r\n\r\n`);
    const body = encoder.encode(message.payload);
    const connect = JSON.stringify({ verbose: false, pedantic: false, headers: true, protocol: 1 });
    await write(conn, `CONNECT ${connect}\r\n`);
    await write(conn, `HPUB ${subject} ${head.length} ${head.length + body.length}\r\n`);
    await conn.write(head);
    await conn.write(body);
    await write(conn, "\r\nPING\r\n");
    await until(conn, "PONG");
  } finally {
    conn.close();
  }
}

async function write(conn: Deno.Conn, text: string): Promise<void> {
  await conn.write(encoder.encode(text));
}

/** Reads until `word` arrives (the server's INFO comes first); fails on an -ERR. */
async function until(conn: Deno.Conn, word: string): Promise<void> {
  const buffer = new Uint8Array(4096);
  let seen = "";
  const deadline = setTimeout(() => conn.close(), 5_000);
  try {
    while (!seen.includes(word)) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error(`Cannot publish: the server closed before ${word}`);
      seen += decoder.decode(buffer.subarray(0, n));
      if (seen.includes("-ERR")) throw new Error(`Cannot publish: ${seen.trim()}`);
    }
  } finally {
    clearTimeout(deadline);
  }
}
