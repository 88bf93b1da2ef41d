/**
 * Row ids: Postgres bigints written in decimal. Anything else cannot name a row, and must not
 * reach a `::bigint` cast (that would be a 500, not a 404).
 */
export const ID_PATTERN = /^[1-9]\d{0,17}$/;

export function isId(value: string | undefined | null): value is string {
  return !!value && ID_PATTERN.test(value);
}
