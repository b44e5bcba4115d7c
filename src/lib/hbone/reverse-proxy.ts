// Everything that is not a tunnel goes to the application on 127.0.0.1:<app port> over HTTP/1.1: bodies stream in
// both directions as they arrive (no buffering), trailers pass through both ways, and the Forwarded/X-Forwarded-*
// headers describe this hop (see forwarded.ts). WebSocket and other upgrades to the app are relayed as raw bytes.
import {
  Agent,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type ServerResponse,
} from 'node:http';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { connect, type Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { Logger } from '../log/logger.ts';
import { endToEndHeaders, type Hop, proxyRequestHeaders, proxyResponseHeaders } from './forwarded.ts';
import { splice } from './pipe.ts';

export interface ReverseProxyOptions {
  readonly appPort: number;
  readonly appHost?: string;
  readonly log: Logger;
}

export interface ReverseProxy {
  h2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, hop: Hop): void;
  h1(req: IncomingMessage, res: ServerResponse, hop: Hop): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, hop: Hop): void;
  close(): void;
}

function wantsTrailers(headers: IncomingHttpHeaders): boolean {
  const te = Array.isArray(headers.te) ? headers.te.join(',') : (headers.te ?? '');
  return /(^|,)\s*trailers\s*(,|$)/i.test(te);
}

function hasEntries(headers: object): boolean {
  return Object.keys(headers).length > 0;
}

/** Sends `body` to `upstream`, then the body's trailers (HTTP/1.1 sends them only with chunked encoding). */
function streamBody(body: Readable, upstream: ClientRequest, trailers: () => IncomingHttpHeaders): void {
  body.pipe(upstream, { end: false });
  body.once('end', () => {
    const t = endToEndHeaders(trailers());
    if (hasEntries(t)) upstream.addTrailers(t as Record<string, string>);
    upstream.end();
  });
}

export function createReverseProxy(options: ReverseProxyOptions): ReverseProxy {
  const agent = new Agent({ keepAlive: true });
  const appHost = options.appHost ?? '127.0.0.1';
  const log = options.log;

  const open = (method: string, path: string, headers: OutgoingHttpHeaders): ClientRequest => {
    const upstream = request({ host: appHost, port: options.appPort, method, path, headers, agent });
    // The app sees the request at once, not with the first body byte: a response may come before any body.
    upstream.flushHeaders();
    return upstream;
  };

  return {
    h2(stream, headers, hop) {
      const method = String(headers[':method'] ?? 'GET');
      const path = String(headers[':path'] ?? '/');
      const out = proxyRequestHeaders(headers, hop);
      if (hop.host) out.host = hop.host;
      const upstream = open(method, path, out);
      let requestTrailers: IncomingHttpHeaders = {};
      stream.once('trailers', (t: IncomingHttpHeaders) => {
        requestTrailers = t;
      });
      streamBody(stream, upstream, () => requestTrailers);
      let complete = false;
      upstream.once('response', (res) => {
        res.once('end', () => {
          complete = true;
        });
        if (stream.destroyed) {
          res.destroy();
          return;
        }
        const trailers = wantsTrailers(headers) || res.headers.trailer !== undefined;
        stream.respond(
          { ...proxyResponseHeaders(res.headers), ':status': res.statusCode ?? 502 },
          { waitForTrailers: trailers },
        );
        if (trailers) stream.once('wantTrailers', () => stream.sendTrailers(endToEndHeaders(res.trailers)));
        res.pipe(stream);
        res.once('aborted', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
        res.once('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
      });
      upstream.once('error', (err) => {
        log.warn('application request failed', { path, error: err.message });
        if (stream.destroyed) return;
        if (!stream.headersSent) stream.respond({ ':status': 502 }, { endStream: true });
        else stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      });
      stream.once('close', () => {
        if (!complete) upstream.destroy();
      });
    },

    h1(req, res, hop) {
      const out = proxyRequestHeaders(req.headers, hop);
      if (hop.host) out.host = hop.host;
      const upstream = open(req.method ?? 'GET', req.url ?? '/', out);
      streamBody(req, upstream, () => req.trailers);
      upstream.once('response', (back) => {
        res.writeHead(back.statusCode ?? 502, proxyResponseHeaders(back.headers));
        back.pipe(res, { end: false });
        back.once('end', () => {
          const t = endToEndHeaders(back.trailers);
          if (hasEntries(t)) res.addTrailers(t as Record<string, string>);
          res.end();
        });
        back.once('aborted', () => res.destroy());
      });
      upstream.once('error', (err) => {
        log.warn('application request failed', { path: req.url, error: err.message });
        if (!res.headersSent) res.writeHead(502, { 'content-length': 0 }).end();
        else res.destroy();
      });
      res.once('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
    },

    upgrade(req, socket, head, hop) {
      let connected = false;
      const app: Socket = connect({ host: appHost, port: options.appPort, allowHalfOpen: true }, () => {
        connected = true;
        const headers = proxyRequestHeaders(req.headers, hop);
        let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\nhost: ${hop.host ?? ''}\r\n`;
        text += `connection: upgrade\r\nupgrade: ${String(req.headers.upgrade ?? '')}\r\n`;
        for (const [name, value] of Object.entries(headers)) {
          if (name === 'host' || value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${v}\r\n`;
        }
        app.write(`${text}\r\n`);
        if (head.length > 0) app.write(head);
        void splice({ stream: socket }, { stream: app, reset: () => app.resetAndDestroy() });
      });
      app.once('error', (err) => {
        if (connected) return;
        log.warn('application upgrade failed', { path: req.url, error: err.message });
        if (!socket.destroyed) socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      });
    },

    close() {
      agent.destroy();
    },
  };
}
