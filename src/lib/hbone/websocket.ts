// HBONE over WebSocket, for front ends and proxies that do not carry HTTP/2 end to end (a Cloud Run service deployed
// without --use-http2). Tunnel bytes travel as binary messages. WebSocket has no half-close, so krun adds one: a
// text message "fin" means "no more bytes in this direction"; the connection closes (1000) once both directions have
// ended. Any other close, or an error, aborts the tunnel. Back-pressure: a full receive buffer pauses the socket,
// and a write completes only once the message is handed to the socket.
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

export const HALF_CLOSE = 'fin';

/** The largest message accepted; krun itself sends at most one stream chunk per message. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export class WebSocketClosedError extends Error {
  readonly code: number;
  constructor(code: number, reason: string) {
    super(`WebSocket closed before the tunnel ended (code ${code}${reason ? `: ${reason}` : ''})`);
    this.code = code;
  }
}

/** A tunnel byte stream over an open WebSocket. */
export class WebSocketDuplex extends Duplex {
  readonly #ws: WebSocket;
  #sentFin = false;
  #gotFin = false;

  constructor(ws: WebSocket) {
    super({ allowHalfOpen: true });
    this.#ws = ws;
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        if (data.toString('utf8') === HALF_CLOSE && !this.#gotFin) {
          this.#gotFin = true;
          this.push(null);
          this.#closeIfDone();
        }
        return;
      }
      if (this.#gotFin) return;
      if (!this.push(data)) ws.pause();
    });
    ws.on('close', (code, reason) => {
      // After both half-closes the stream ends by itself once its reader has taken the last bytes.
      if (!(this.#gotFin && this.#sentFin)) this.destroy(new WebSocketClosedError(code, reason.toString('utf8')));
    });
    ws.on('error', (err) => this.destroy(err));
  }

  #closeIfDone(): void {
    if (this.#gotFin && this.#sentFin && this.#ws.readyState === 1) this.#ws.close(1000);
  }

  override _read(): void {
    if (this.#ws.isPaused) this.#ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== 1) {
      callback(new WebSocketClosedError(1006, 'not open'));
      return;
    }
    this.#ws.send(chunk, { binary: true }, (err) => callback(err ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== 1) {
      callback(new WebSocketClosedError(1006, 'not open'));
      return;
    }
    this.#ws.send(HALF_CLOSE, { binary: false }, (err) => {
      if (!err) {
        this.#sentFin = true;
        this.#closeIfDone();
      }
      callback(err ?? null);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const state = this.#ws.readyState;
    if (error && state !== 3) this.#ws.terminate();
    else if (state === 0 || state === 1) this.#ws.close(1000);
    callback(error);
  }
}
