/**
 * resource.Quantity canonicalization, as the API server stores quantities: `1024Mi` → `1Gi`,
 * `0.5` → `500m`, `1000` → `1k`, `1.5Gi` → `1536Mi`. Clients comparing rendered manifests with
 * live objects meet these rewrites on a real cluster, so the emulator makes them too.
 */

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const BINARY = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const DECIMAL_SUFFIX = new Map(Object.entries(DECIMAL).map(([s, e]) => [e, s]));

export const QUANTITY_PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/** The canonical form of a quantity, or undefined when `input` is not a quantity. */
export function canonicalQuantity(input: string | number): string | undefined {
  const m = QUANTITY.exec(String(input).trim());
  if (!m) return undefined;
  const [, sign = '', num = '', suffix = ''] = m;
  const [intPart = '', fracPart = ''] = num.split('.');
  let mantissa = BigInt((intPart + fracPart).replace(/^0+(?=\d)/, '') || '0');
  let exp10 = -fracPart.length;
  const negative = sign === '-' && mantissa !== 0n;

  const binaryIndex = BINARY.indexOf(suffix);
  if (suffix !== '' && binaryIndex > 0) {
    mantissa *= 1024n ** BigInt(binaryIndex);
    return (negative ? '-' : '') + formatBinary(mantissa, exp10);
  }
  let exponentStyle = false;
  if (/^[eE]/.test(suffix)) {
    exponentStyle = true;
    exp10 += Number(suffix.slice(1));
  } else {
    exp10 += DECIMAL[suffix] ?? 0;
  }
  return (negative ? '-' : '') + formatDecimal(mantissa, exp10, exponentStyle);
}

function formatBinary(mantissa: bigint, exp10: number): string {
  const denominator = exp10 < 0 ? 10n ** BigInt(-exp10) : 1n;
  const numerator = exp10 > 0 ? mantissa * 10n ** BigInt(exp10) : mantissa;
  if (numerator % denominator !== 0n) return formatDecimal(mantissa, exp10, false);
  const value = numerator / denominator;
  if (value < 1024n) return formatDecimal(value, 0, false);
  let k = 0;
  let rest = value;
  while (k < BINARY.length - 1 && rest % 1024n === 0n) {
    rest /= 1024n;
    k++;
  }
  return `${rest}${BINARY[k] ?? ''}`;
}

function formatDecimal(mantissaIn: bigint, exp10In: number, exponentStyle: boolean): string {
  let mantissa = mantissaIn;
  let exp10 = exp10In;
  if (mantissa === 0n) return '0';
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exp10++;
  }
  if (exp10 < -9) {
    // Quantities keep nano precision; smaller values round up.
    const divisor = 10n ** BigInt(-9 - exp10);
    mantissa = (mantissa + divisor - 1n) / divisor;
    exp10 = -9;
  }
  let exp3 = Math.floor(exp10 / 3) * 3;
  if (exp3 > 18) exp3 = 18;
  mantissa *= 10n ** BigInt(exp10 - exp3);
  if (exponentStyle) return exp3 === 0 ? `${mantissa}` : `${mantissa}e${exp3}`;
  return `${mantissa}${DECIMAL_SUFFIX.get(exp3) ?? ''}`;
}

/** Numeric value of a quantity (for comparisons such as "storage may not shrink"). */
export function quantityValue(input: string | number): number | undefined {
  const canonical = canonicalQuantity(input);
  if (canonical === undefined) return undefined;
  const m = /^(-?\d+)(.*)$/.exec(canonical);
  if (!m) return undefined;
  const base = Number(m[1]);
  const suffix = m[2] ?? '';
  const bin = BINARY.indexOf(suffix);
  if (suffix !== '' && bin > 0) return base * 1024 ** bin;
  if (/^e/.test(suffix)) return base * 10 ** Number(suffix.slice(1));
  return base * 10 ** (DECIMAL[suffix] ?? 0);
}
