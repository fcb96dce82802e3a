/** Small, pure formatting helpers (no DOM). */

export const shortSha = (sha: string | null | undefined): string => (sha ? sha.slice(0, 8) : '—');

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m - h * 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** "12 s ago", "3 min ago"; the exact time goes in a title attribute next to it. */
export function relativeTime(iso: string | null | undefined, now: number): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const d = Math.max(0, now - t);
  if (d < 5000) return 'just now';
  return `${formatDuration(Math.round(d / 1000) * 1000).replace(/\.\d/, '')} ago`;
}

export const localTime = (iso: string | null | undefined): string => {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
};

const PLAIN = /^[A-Za-z0-9_./@-][A-Za-z0-9 _./:@+-]*$/;
const AMBIGUOUS = /^(?:true|false|yes|no|on|off|null|~|[-+]?(?:\d[\d_]*)?\.?\d+(?:e[-+]?\d+)?|0x[0-9a-f]+|0o[0-7]+|\.inf|\.nan)$/i;

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  return PLAIN.test(s) && !AMBIGUOUS.test(s) && !s.endsWith(' ') && !s.includes(': ') && !s.includes(' #') ? s : JSON.stringify(s);
}

const key = (k: string): string => (PLAIN.test(k) && !AMBIGUOUS.test(k) ? k : JSON.stringify(k));

/**
 * JSON data as block YAML, for showing a tenant's spec the way it is written in the repository.
 * Strings that could be misread are double-quoted (JSON strings are valid YAML).
 */
export function toYaml(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return value
      .map((item) => {
        if (item !== null && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length > 0) {
          const inner = toYaml(item, `${indent}  `);
          return `${indent}- ${inner.slice(indent.length + 2)}`;
        }
        const nested = item !== null && typeof item === 'object' ? toYaml(item, `${indent}  `) : null;
        return nested !== null && nested.includes('\n') ? `${indent}-\n${nested}` : `${indent}- ${nested ?? scalar(item)}`;
      })
      .join('\n');
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return entries
      .map(([k, v]) => {
        if (v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0)) {
          return `${indent}${key(k)}:\n${toYaml(v, Array.isArray(v) ? indent : `${indent}  `)}`;
        }
        return `${indent}${key(k)}: ${v !== null && typeof v === 'object' ? toYaml(v) : scalar(v)}`;
      })
      .join('\n');
  }
  return scalar(value);
}
