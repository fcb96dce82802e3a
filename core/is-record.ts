/** A plain JSON-like object (not null, not an array): the shape checks of parsed YAML, JSON and API bodies start here. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
