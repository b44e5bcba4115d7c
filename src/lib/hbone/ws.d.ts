// The part of the `ws` package's API that krun uses (the package ships no types, and @types/ws is not a dependency).
declare module 'ws' {
  type IncomingMessage = import('node:http').IncomingMessage;
  type ClientRequest = import('node:http').ClientRequest;
  type Duplex = import('node:stream').Duplex;
  type EventEmitter = import('node:events').EventEmitter;

  export interface ClientOptions {
    headers?: Record<string, string>;
    perMessageDeflate?: boolean;
    maxPayload?: number;
    ca?: string | Buffer | (string | Buffer)[];
    servername?: string;
    handshakeTimeout?: number;
    createConnection?: (options: object) => Duplex;
    cert?: string;
    key?: string;
    rejectUnauthorized?: boolean;
  }

  export class WebSocket extends EventEmitter {
    constructor(address: string | URL, options?: ClientOptions);
    constructor(address: string | URL, protocols: string[], options?: ClientOptions);
    /** The subprotocol the server selected ('' when none). */
    readonly protocol: string;
    readonly readyState: 0 | 1 | 2 | 3;
    readonly bufferedAmount: number;
    readonly isPaused: boolean;
    send(data: Buffer | string, options: { binary?: boolean }, cb?: (err?: Error) => void): void;
    close(code?: number, reason?: string): void;
    terminate(): void;
    pause(): void;
    resume(): void;
    on(event: 'open', listener: () => void): this;
    on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
    on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: 'unexpected-response', listener: (req: ClientRequest, res: IncomingMessage) => void): this;
    once(event: 'open', listener: () => void): this;
    once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    once(event: 'error', listener: (err: Error) => void): this;
    once(event: 'unexpected-response', listener: (req: ClientRequest, res: IncomingMessage) => void): this;
    off(event: string, listener: (...args: never[]) => void): this;
  }

  export interface ServerOptions {
    noServer: true;
    perMessageDeflate?: boolean;
    maxPayload?: number;
    handleProtocols?: (protocols: Set<string>, req: IncomingMessage) => string | false;
  }

  export class WebSocketServer extends EventEmitter {
    constructor(options: ServerOptions);
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket) => void): void;
    close(cb?: () => void): void;
  }
}
