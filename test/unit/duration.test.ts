import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { durationToMillis, formatMillis, GO_DURATION_PATTERN, parseGoDuration } from '../../src/api/duration.js';

const S = 1_000_000_000n;

describe('Go durations', () => {
  it('parses every form a user writes', () => {
    const cases: Array<[string, bigint]> = [
      ['5m', 5n * 60n * S],
      ['1h', 3600n * S],
      ['1h30m', 5400n * S],
      ['5m30s', 330n * S],
      ['1.5h', 5400n * S],
      ['300ms', 300_000_000n],
      ['1.5s', 1_500_000_000n],
      ['.5m', 30n * S],
      ['1.m', 60n * S],
      ['10us', 10_000n],
      ['10µs', 10_000n],
      ['10μs', 10_000n],
      ['7ns', 7n],
      ['2h45m10.5s', 9910n * S + 500_000_000n],
      ['0', 0n],
      ['+1m', 60n * S],
      ['-1m', -60n * S],
      ['0.000000001s', 1n],
      ['1h1h', 7200n * S],
    ];
    for (const [text, nanos] of cases) assert.equal(parseGoDuration(text), nanos, text);
  });

  it('rejects what Go rejects, with Go-style messages', () => {
    assert.throws(() => parseGoDuration(''), /invalid duration ""/);
    assert.throws(() => parseGoDuration('5 minutes'), /unknown unit " minutes"/);
    assert.throws(() => parseGoDuration('5'), /missing unit/);
    assert.throws(() => parseGoDuration('m'), /invalid duration/);
    assert.throws(() => parseGoDuration('.s'), /invalid duration/);
    assert.throws(() => parseGoDuration('1d'), /unknown unit "d"/);
    assert.throws(() => parseGoDuration('9999999999h'), /invalid duration/);
    assert.throws(() => parseGoDuration('1h-1m'), /unknown unit "h-"/);
  });

  it('matches Go time.ParseDuration on a corpus (differential test against the real Go toolchain)', () => {
    const inputs = [
      '5m', '1h30m', '1.5h', '300ms', '', '5 minutes', '-1m', '+0', '0', '00', '0.', '.0s', '1.0000000001s',
      '123456789.123456789s', '2562047h', '2562048h', '9223372036854775807ns', '9223372036854775808ns',
      '-9223372036854775808ns', '0.3333333333333333333h', '1.9999999999999999999ms', '3m0.1s', '1e3s', '1_000s',
      '1H', '1hh', '1m1', '\u00b5s', '1\u00b5s', '1\u03bcs', '12345678901234567890ns', '.123456789123456789h',
    ];
    const dir = mkdtempSync(join(tmpdir(), 'godur-'));
    try {
      writeFileSync(
        join(dir, 'main.go'),
        `package main
import ("bufio";"fmt";"os";"time")
func main() {
  s := bufio.NewScanner(os.Stdin)
  for s.Scan() {
    d, err := time.ParseDuration(s.Text())
    if err != nil { fmt.Println("ERR") } else { fmt.Println(int64(d)) }
  }
}
`,
      );
      writeFileSync(join(dir, 'go.mod'), 'module godur\n\ngo 1.21\n');
      const out = execFileSync('go', ['run', '.'], {
        cwd: dir,
        input: inputs.join('\n') + '\n',
        env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' },
      })
        .toString()
        .trim()
        .split('\n');
      assert.equal(out.length, inputs.length);
      inputs.forEach((input, i) => {
        let ours: string;
        try {
          ours = parseGoDuration(input).toString();
        } catch {
          ours = 'ERR';
        }
        assert.equal(ours, out[i], `input ${JSON.stringify(input)}`);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('converts to milliseconds, rounding sub-millisecond durations up', () => {
    assert.equal(durationToMillis(parseGoDuration('1.5s')), 1500);
    assert.equal(durationToMillis(parseGoDuration('1ns')), 1);
    assert.equal(formatMillis(5_400_000), '1h30m0s');
    assert.equal(formatMillis(60_000), '1m0s');
    assert.equal(formatMillis(1500), '1.5s');
  });

  it('has a CRD pattern accepting the positive forms and every form Omnia accepts', () => {
    const re = new RegExp(GO_DURATION_PATTERN);
    for (const ok of ['5m', '1h30m', '1.5h', '300ms', '10us', '.5s', '5m30s']) assert.ok(re.test(ok), ok);
    for (const bad of ['', '5 minutes', '-1m', '5', 'm']) assert.ok(!re.test(bad), bad);
    const omnia = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
    for (const s of ['1m', '1.5h', '10ms', '1h2m3s', '0s']) assert.equal(omnia.test(s) && !re.test(s), false, s);
  });
});
