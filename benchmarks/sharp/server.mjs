// The sharp peer of benchmarks/sharp_peer.py: one GET endpoint that renders a file of
// ROOT with sharp, encoder settings matched to pixelmill's (src/pixelmill/imaging/encode.py).
//
//   node server.mjs PORT ROOT
//   GET /render?src=FILE&w=W&h=H&format=jpeg|png|webp|avif&q=Q
//
// Matched settings (see docs/benchmarks.md, "Against sharp"):
//   JPEG: baseline, no mozjpeg, no Huffman optimisation, no trellis, 4:2:0 below q 90
//         (libvips' subsample_mode=auto, which pixelmill uses), 4:4:4 from q 90;
//   PNG:  zlib level 6, no adaptive filtering (libvips' default filter none), no palette;
//   WebP: effort 2, lossy;  AVIF: effort 0 (pixelmill's serving default), 4:2:0, 8 bits;
//   resize: fit cover, centre, lanczos3 (both sides use libvips' default kernel);
//   EXIF orientation applied (.rotate()), metadata stripped, output sRGB 8-bit;
//   an animated GIF rendered to WebP keeps its frames (animated: true), as pixelmill does.
// Threads: sharp.concurrency(1): one libvips thread per render; renders in flight are
// libuv's threadpool (UV_THREADPOOL_SIZE, default 4), sharp's defaults otherwise.
import http from "node:http";
import path from "node:path";
import sharp from "sharp";
import { encoder } from "./encoders.mjs";

const [port, root] = [Number(process.argv[2]), process.argv[3]];
sharp.concurrency(1);
sharp.cache(false); // no libvips operation cache: every request decodes (pixelmill: none)

const MIME = { jpeg: "image/jpeg", png: "image/png", webp: "image/webp", avif: "image/avif" };

async function render(params) {
  const src = path.join(root, path.basename(params.get("src") || ""));
  const format = params.get("format") || "jpeg";
  const q = Number(params.get("q") || 82);
  const w = params.get("w") ? Number(params.get("w")) : null;
  const h = params.get("h") ? Number(params.get("h")) : null;
  const animated = src.endsWith(".gif") && format === "webp";
  let pipe = sharp(src, { animated, limitInputPixels: 268402689 }).rotate();
  pipe = pipe.resize(w, h, { fit: "cover", position: "centre", withoutEnlargement: true });
  if (format === "jpeg") pipe = pipe.flatten({ background: "#ffffff" });
  return encoder(pipe, format, q).toBuffer();
}

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname === "/healthz") {
      res.writeHead(200).end("ok");
      return;
    }
    try {
      const body = await render(url.searchParams);
      const format = url.searchParams.get("format") || "jpeg";
      res.writeHead(200, { "Content-Type": MIME[format], "Content-Length": body.length });
      res.end(body);
    } catch (err) {
      res.writeHead(400, { "Content-Type": "text/plain" }).end(String(err));
    }
  })
  .listen(port, "127.0.0.1");
