/**
 * The one loose type of the test kit: a JSON document a test reads by path (`body.data.id`) or
 * edits freely. Tests check its shape with assertions, so a static type would only repeat them.
 */
// deno-lint-ignore no-explicit-any
export type JsonBody = any;
