import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports for servers the tests (and bench) start on loopback. They are picked
 * *below* the kernel's ephemeral range: a port the OS hands out for `listen(0)`
 * or an outgoing connection — the Temporal dev server's internal services take
 * several that way — could be taken by another process between our choosing it
 * and the server binding it ("address already in use"). Below the range only
 * another explicit chooser can race us, and random choice makes that rare.
 */
const taken = new Set<number>();

function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 12_000) return low;
  } catch {
    // not Linux: IANA's dynamic range
  }
  return 49_152;
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A TCP port nobody listens on now and that this process has not handed out before. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const high = ephemeralRangeStart();
  const low = Math.max(1024, high - 20_000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (taken.has(port)) continue;
    if (await canListen(port, host)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free TCP port found on ${host} between ${low} and ${high}`);
}
