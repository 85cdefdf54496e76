// sharp's encoders with the settings matched to pixelmill's (src/pixelmill/imaging/encode.py),
// shared by server.mjs and gif_stages.mjs so both measure the same encodes (see
// server.mjs's header for what each setting matches).

export function encoder(pipe, format, q) {
  if (format === "jpeg") {
    return pipe.jpeg({
      quality: q,
      mozjpeg: false,
      optimiseCoding: false,
      trellisQuantisation: false,
      overshootDeringing: false,
      optimiseScans: false,
      progressive: false,
      chromaSubsampling: q >= 90 ? "4:4:4" : "4:2:0",
    });
  }
  if (format === "png") {
    return pipe.png({ compressionLevel: 6, adaptiveFiltering: false, palette: false });
  }
  if (format === "webp") return pipe.webp({ quality: q, effort: 2 });
  if (format === "avif") {
    return pipe.avif({ quality: q, effort: 0, chromaSubsampling: "4:2:0", bitdepth: 8 });
  }
  throw new Error(`unknown format ${format}`);
}
