/** A parsed SSE message. */
export interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
  comment?: string;
}

/** Reads an SSE body into messages as they arrive; stops when `until` says so or the stream ends. */
export async function readSse(body: ReadableStream<Uint8Array>, until: (m: SseMessage, all: SseMessage[]) => boolean = () => false): Promise<SseMessage[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const out: SseMessage[] = [];
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message: SseMessage = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) message.comment = line.slice(1).trim();
          else {
            const colon = line.indexOf(':');
            const key = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, '');
            if (key === 'id') message.id = value;
            else if (key === 'event') message.event = value;
            else if (key === 'data') message.data = message.data === undefined ? value : `${message.data}\n${value}`;
            else if (key === 'retry') message.retry = Number(value);
          }
        }
        out.push(message);
        if (until(message, out)) return out;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return out;
}
