/** A raw TCP client for tests of a listener's limits and deadlines. */
import net from "node:net";

/**
 * A raw TCP connection to `port` on 127.0.0.1 from the loopback address
 * `from` (any of 127.0.0.0/8 on Linux: another host, as the listener sees
 * it), which writes `text`; `ended` gives all it received once the other
 * side closed it, or `timedOut` after `limitMs` (a guard against a hang,
 * not a measure: every test expects an end well before it).
 */
export async function rawClient(port: number, text: string, from = "127.0.0.1", limitMs = 20_000) {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress: from });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let received = "";
  socket.on("data", (chunk: Uint8Array) => received += new TextDecoder().decode(chunk));
  socket.on("error", () => {});
  if (text) socket.write(text);
  const ended = new Promise<{ received: string; timedOut: boolean }>((resolve) => {
    const guard = setTimeout(() => resolve({ received, timedOut: true }), limitMs);
    socket.once("close", () => {
      clearTimeout(guard);
      resolve({ received, timedOut: false });
    });
  });
  return { socket, ended, close: () => socket.destroy() };
}
