// Shape checkers for JSON from the server: responses are checked for the shape a caller
// needs, never cast blindly. Each returns the value when it has the type asked for, else a
// fallback, so parsers read like the shape they expect.

/** A JSON object (not an array, not null). */
export type JsonRecord = Record<string, unknown>;

/** Whether `value` is a JSON object (not an array, not null). */
export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `value` when it is a string, else `fallback`. */
export function asString(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

/** `value` when it is a string, a number as its text (ids, versions), else `fallback`. */
export function asText(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : fallback;
}

/** `value` when it is a finite number, else `fallback` (null when not given). */
export function asNumber(value: unknown): number | null;
export function asNumber<T>(value: unknown, fallback: T): number | T;
export function asNumber(value: unknown, fallback: unknown = null): unknown {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** A list endpoint's items, paginated ({results}) or not; [] for anything else. */
export function listOf(body: unknown): unknown[] {
  if (Array.isArray(body)) return body;
  if (isRecord(body) && Array.isArray(body.results)) return body.results;
  return [];
}
