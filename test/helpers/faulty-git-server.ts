/**
 * The demo git smart-HTTP server (src/dev/demo-git/git-http-server.ts) with
 * fault injection for the tests: down, an HTTP status, a delay, or a response
 * cut off halfway — set and cleared at any time with setFault.
 */
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import { GitHttpServer, type GitHttpServerOptions } from '../../src/dev/demo-git/git-http-server.js';

export type GitHttpFault =
  | null
  /** Destroy every connection / request socket without answering. */
  | { kind: 'down' }
  /** Answer every request with this HTTP status and a short text body. */
  | { kind: 'status'; code: number }
  /** Wait this long before handling each request (then answer normally). */
  | { kind: 'delay'; ms: number }
  /** Start answering normally, then close the connection mid-response. */
  | { kind: 'cut' };

export class FaultyGitHttpServer extends GitHttpServer {
  private fault: GitHttpFault = null;

  static override async start(opts: GitHttpServerOptions): Promise<FaultyGitHttpServer> {
    return GitHttpServer.listen(opts, (server) => new FaultyGitHttpServer(opts, server));
  }

  setFault(f: GitHttpFault): void {
    this.fault = f;
    // Kept-alive connections would otherwise still be served.
    if (f?.kind === 'down') this.dropConnections();
  }

  protected override accept(_socket: Socket): boolean {
    return this.fault?.kind !== 'down';
  }

  protected override async intercept(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    let fault = this.fault;
    if (fault?.kind === 'delay') {
      const ms = fault.ms;
      await new Promise((r) => setTimeout(r, ms));
      fault = this.fault; // may have changed while waiting
      if (fault?.kind === 'delay') fault = null;
    }
    if (fault?.kind === 'down') {
      req.socket.destroy();
      return true;
    }
    if (fault?.kind === 'status') {
      req.resume();
      res.writeHead(fault.code, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end(`injected fault: HTTP ${fault.code}\n`);
      return true;
    }
    if (fault?.kind === 'cut') cutAfterFirstBytes(res);
    return false;
  }
}

/**
 * Sends half of the first body chunk, then drops the connection (the server
 * kills its git http-backend when the response closes early).
 */
function cutAfterFirstBytes(res: http.ServerResponse): void {
  const write = res.write.bind(res) as (chunk: Buffer) => boolean;
  let cut = false;
  res.write = ((chunk: Buffer) => {
    if (cut || chunk.length === 0) return true;
    cut = true;
    write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
    res.end = (() => res) as typeof res.end; // never a proper end after the cut
    setImmediate(() => {
      res.socket?.destroy();
      res.destroy();
    });
    return true;
  }) as typeof res.write;
}
