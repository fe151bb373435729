// A level meter on a <meter> element (RMS in dBFS, -60..0) for a MediaStream, ten times a second. The element's
// data-db holds the last level and data-max-db the loudest since it was last reset (for the page's status and tests).
export function startLevelMeter(stream, element) {
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  src.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const show = (on) => {
    element.hidden = !on;
    for (const label of element.labels ?? []) label.hidden = !on;   // its visible name goes with it
  };
  show(true);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    const db = 10 * Math.log10(sum / buf.length + 1e-12);
    element.value = Math.max(-60, Math.min(0, db));
    element.dataset.db = db.toFixed(1);
    element.dataset.maxDb = String(Math.max(Number(element.dataset.maxDb ?? -120), db).toFixed(1));
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      show(false);
      element.value = -60;
      ctx.close().catch(() => {});
    },
  };
}
