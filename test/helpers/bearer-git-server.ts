/**
 * The demo git smart-HTTP server behind a bearer token, as GitHub/GitLab accept
 * tokens: every request must carry `Authorization: Bearer <token>`, else 401.
 */
import type * as http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { GitHttpServer, type GitHttpServerOptions } from '../../src/dev/demo-git/git-http-server.js';

export class BearerGitHttpServer extends GitHttpServer {
  private token = '';
  /** Requests refused for a missing or wrong token. */
  refused = 0;

  static async startWithToken(opts: GitHttpServerOptions, token: string): Promise<BearerGitHttpServer> {
    const server = await GitHttpServer.listen(opts, (s) => new BearerGitHttpServer(opts, s));
    server.token = token;
    return server;
  }

  protected override async intercept(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const got = Buffer.from(m?.[1] ?? '');
    const want = Buffer.from(this.token);
    if (got.length === want.length && timingSafeEqual(got, want)) return false;
    this.refused++;
    req.resume();
    res.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="arena-test"', 'Content-Type': 'text/plain' });
    res.end('bad token\n');
    return true;
  }
}
