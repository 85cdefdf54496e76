// sharp's side of benchmarks/gif_stages.py: CPU of each stage of the GIF renders of
// sharp_peer.py's matrix, in-process (no HTTP), as server.mjs runs them.
//
//   node gif_stages.mjs GIF REPS      (run from benchmarks/.work/sharp: its node_modules)
//
// One libvips thread (sharp.concurrency(1)), no operation cache, one render at a time;
// process.cpuUsage() medians (all threads). Each row is a whole sharp pipeline (open,
// decode frame 0 with gifload n=1 sequential, ...) to a raw buffer or an encoded file:
// the difference between two rows is the cost of the stage one adds.
import sharp from "sharp";
import { encoder } from "./encoders.mjs";

sharp.concurrency(1);
sharp.cache(false);

const [src, reps] = [process.argv[2], Number(process.argv[3] || 100)];
const flat = { background: "#ffffff" };
const cover = (p) => p.resize(400, 300, { fit: "cover", position: "centre", withoutEnlargement: true });
const jpeg = (p) => encoder(p, "jpeg", 82);
const avif = (p) => encoder(p, "avif", 82);

const stages = {
  "header only (metadata)": () => sharp(src).metadata(),
  "decode frame 0 (raw RGBA out)": () => sharp(src).raw().toBuffer(),
  "+ flatten onto white (raw RGB)": () => sharp(src).flatten(flat).raw().toBuffer(),
  "+ resize to 400x300 (raw RGB)": () => cover(sharp(src).rotate()).flatten(flat).raw().toBuffer(),
  "render jpeg (decode, flatten, resize, encode)": () =>
    jpeg(cover(sharp(src).rotate()).flatten(flat)).toBuffer(),
  "render avif (decode, resize, encode)": () => avif(cover(sharp(src).rotate())).toBuffer(),
};

console.log(`sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}`);
for (const [name, run] of Object.entries(stages)) {
  for (let i = 0; i < 5; i++) await run();
  const spent = [];
  for (let i = 0; i < reps; i++) {
    const before = process.cpuUsage();
    await run();
    const used = process.cpuUsage(before);
    spent.push((used.user + used.system) / 1000);
  }
  spent.sort((a, b) => a - b);
  console.log(`sharp: ${name.padEnd(52)} ${spent[reps >> 1].toFixed(2).padStart(7)} ms`);
}
