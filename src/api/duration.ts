/**
 * Go's time.ParseDuration, ported exactly (same grammar, units, fraction
 * handling and overflow rule) so that an interval means here what it means
 * to kubectl users and to Omnia's Go controller. Pure: safe in workflow code.
 */

const NANOS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60n * 1_000_000_000n,
  h: 3600n * 1_000_000_000n,
};

const MAX_INT64 = (1n << 63n) - 1n;
/** Go checks against 1<<63 while accumulating so that the most negative duration parses. */
const LIMIT = 1n << 63n;

export class DurationSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DurationSyntaxError';
  }
}

/** Parses a Go duration string; returns nanoseconds (negative allowed, as in Go). */
export function parseGoDuration(input: string): bigint {
  const orig = input;
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);

  let total = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || isDigit(s[0]))) throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);
    // Integer part (Go's leadingInt: overflow is an error).
    let i = 0;
    while (i < s.length && isDigit(s[i])) i++;
    const intDigits = s.slice(0, i);
    s = s.slice(i);
    let value = intDigits === '' ? 0n : BigInt(intDigits);
    if (value > LIMIT) throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);
    const pre = intDigits !== '';
    // Fraction part (Go's leadingFraction: digits past overflow are ignored).
    let frac = 0n;
    let scale = 1;
    let post = false;
    if (s[0] === '.') {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      while (j < s.length && isDigit(s[j])) {
        if (!overflow) {
          if (frac > MAX_INT64 / 10n) overflow = true;
          else {
            const next = frac * 10n + BigInt(s.charCodeAt(j) - 48);
            if (next > LIMIT) overflow = true;
            else {
              frac = next;
              scale *= 10;
            }
          }
        }
        j++;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);
    // Unit.
    let k = 0;
    while (k < s.length && s[k] !== '.' && !isDigit(s[k])) k++;
    if (k === 0) throw new DurationSyntaxError(`missing unit in duration ${quote(orig)}`);
    const unitName = s.slice(0, k);
    s = s.slice(k);
    const unit = NANOS[unitName];
    if (unit === undefined) {
      throw new DurationSyntaxError(`unknown unit ${quote(unitName)} in duration ${quote(orig)}`);
    }
    if (value > LIMIT / unit) throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);
    value *= unit;
    if (frac > 0n) {
      // Go computes this in float64 ("to be nanosecond accurate for fractions of hours"); so do we.
      value += BigInt(Math.trunc(Number(frac) * (Number(unit) / scale)));
      if (value > LIMIT) throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);
    }
    total += value;
    if (total > LIMIT) throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);
  }
  if (neg) return -total;
  if (total > MAX_INT64) throw new DurationSyntaxError(`invalid duration ${quote(orig)}`);
  return total;
}

/** Milliseconds, rounded up so that a positive sub-millisecond duration never becomes 0. */
export function durationToMillis(nanos: bigint): number {
  const ms = nanos / 1_000_000n + (nanos % 1_000_000n > 0n ? 1n : 0n);
  return Number(ms);
}

/** Formats milliseconds the way Go's Duration.String does for whole milliseconds (e.g. 1h30m0s, 1.5s). */
export function formatMillis(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  if (rest < 1000) return `${sign}${rest}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = rest / 1000;
  const secText = Number.isInteger(sec) ? String(sec) : String(Number(sec.toFixed(3)));
  if (h > 0) return `${sign}${h}h${m}m${secText}s`;
  if (m > 0) return `${sign}${m}m${secText}s`;
  return `${sign}${secText}s`;
}

/**
 * The grammar as a regular expression (unsigned, non-zero form), for the CRD's
 * OpenAPI `pattern`. It accepts everything Omnia's `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$` does.
 */
export const GO_DURATION_PATTERN = '^(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$';

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function quote(s: string): string {
  return JSON.stringify(s);
}
