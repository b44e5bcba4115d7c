// HTTP/2 flow-control windows for every HBONE connection krun opens or accepts (the tunnel client, the server, the
// gate's pool). They bound memory, not just speed: a peer may send a stream no more than its window before the
// receiver reads, and the tunnel reads only as fast as the other side drains (pipe back-pressure, a 64 KiB
// highWaterMark per side). So a tunnel holds at most STREAM_WINDOW + 2 × 64 KiB (plus one socket read in flight) in
// each direction, and a connection at most SESSION_WINDOW across its streams. Node's 64 KiB default would cap a
// stream at one window per round trip; SETTINGS_MAX_FRAME_SIZE is left alone because Node sends 16 KiB DATA frames
// whatever the peer allows.
/** Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
export const STREAM_WINDOW = 1 << 20;
/** Per-connection receive window (setLocalWindowSize once the session is up). */
export const SESSION_WINDOW = 16 << 20;
