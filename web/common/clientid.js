// One id per page load: it names this tab as the owner of a stream it starts, and its presence socket.
function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
export const clientId = randomId();
