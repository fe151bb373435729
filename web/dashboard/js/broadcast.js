// The broadcast side of going live. The stream's lifecycle (start, stop, timer) is the server's; attaching the
// microphone to the stream happens here once media is wired. Nothing here runs before the user presses Go live.
export async function startBroadcast(_session) {}
export function stopBroadcast() {}
