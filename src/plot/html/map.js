// The interactive HTML map of mmembed's scatter plots (src/plot/html.h describes the JSON
// block it reads). Points are drawn on a <canvas> (50,000 take ~30 ms without a GPU, see
// drawMarkers); the hover and pinned rings on a second canvas above it, so that moving the
// mouse does not redraw the points.
//
// State in the URL fragment (read on load and on hashchange, written back as it changes;
// values percent-encoded, lists comma-separated):
//   #search=cat            highlight the points whose id, caption or text contains "cat"
//   &hide=dog,bird         hide these labels        &only=cat   show only these labels
//   &view=x0,x1,y0,y1      the visible data range   &tip=ID     pin the tooltip of point ID
// What it shows is written into <div id="mm-state"> as attributes (data-ready, data-points,
// data-drawn, data-shown, data-legend, data-hidden, data-query, data-matches, ...), for tests.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const t0 = performance.now();
  const stateEl = $('mm-state');
  const D = JSON.parse($('mm-data').textContent);
  const parseMs = performance.now() - t0;

  // ---- data ----------------------------------------------------------------------------------
  const n = D.x.length;
  const names = D.categories;
  const ncat = Math.max(1, names.length);
  const colours = D.colours;
  const catOf = new Int32Array(n);
  if (D.category.length === n) for (let i = 0; i < n; ++i) catOf[i] = D.category[i];
  const hasIds = D.ids.length === n, hasCaps = D.captions.length === n;
  const hasTexts = D.texts.length === n, hasThumbs = D.thumbnails.length === n;
  const isThumb = new Uint8Array(n);
  if (hasThumbs) {
    for (let i = 0; i < n; ++i) isThumb[i] = /^data:image\//.test(D.thumbnails[i]) ? 1 : 0;
  }
  const [xlo, xhi] = D.x_limits, [ylo, yhi] = D.y_limits;
  // (v - lo) / (hi - lo), also when hi - lo overflows (limits of opposite signs near DBL_MAX).
  const frac = (v, lo, hi) =>
    Number.isFinite(hi - lo) ? (v - lo) / (hi - lo) : (v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5);
  const unfrac = (f, lo, hi) =>
    Number.isFinite(hi - lo) ? lo + f * (hi - lo) : (1 - f) * lo + f * hi;
  const fx = new Float64Array(n), fy = new Float64Array(n);
  for (let i = 0; i < n; ++i) {
    fx[i] = frac(D.x[i], xlo, xhi);
    fy[i] = frac(D.y[i], ylo, yhi);
  }
  const counts = new Int32Array(ncat);
  for (let i = 0; i < n; ++i) counts[catOf[i]]++;
  const idOf = (i) => (hasIds && D.ids[i] !== '' ? D.ids[i] : '#' + i);
  let haystack = null;  // lower-cased "id caption text" per point, built on the first search
  const fmt = (k) => k.toLocaleString('en-US');

  // Sizes in CSS pixels (the JSON's are in points; 1 px = 3/4 pt), as the static plot.
  const PX = 4 / 3;
  const R = (D.point_size_pt / 2) * PX;
  const EDGE = Math.min(1, Math.max(0.3, D.point_size_pt * 0.08)) * PX;
  const THUMB = D.thumbnail_size_pt * PX;
  const ALPHA = D.alpha;
  const FONT = '"DejaVu Sans", Verdana, sans-serif';
  const TICK_FONT = '12px ' + FONT, LABEL_FONT = '14px ' + FONT, TEXT_FONT = '10px ' + FONT;

  // ---- state ---------------------------------------------------------------------------------
  const hidden = new Uint8Array(ncat);
  let query = '';
  let match = null;  // Uint8Array per point while a search is active
  let matchShown = 0, matchHidden = 0;
  const matchPerCat = new Int32Array(ncat);
  const HOME = { x0: 0, x1: 1, y0: 0, y1: 1 };
  let view = { ...HOME };
  let hover = -1, pinned = -1;

  // ---- elements ------------------------------------------------------------------------------
  const plotEl = $('mm-plot'), canvas = $('mm-canvas'), overlay = $('mm-overlay');
  const tip = $('mm-tip');
  const search = $('mm-search'), countEl = $('mm-count');
  const ctx = canvas.getContext('2d', { alpha: false });
  const octx = overlay.getContext('2d');
  let W = 0, H = 0, dpr = 1;
  let P = { x: 0, y: 0, w: 1, h: 1 };  // the axes frame in CSS pixels
  const sx = new Float32Array(n), sy = new Float32Array(n);  // screen position of drawn points
  const tw = new Float32Array(n), th = new Float32Array(n);  // drawn thumbnail size
  const order = new Int32Array(n);                            // drawn points, bottom to top
  const drawnFlag = new Uint8Array(n);
  let norder = 0;
  let stats = { drawn: 0, thumbs: 0, texts: 0, ms: 0 };
  let firstDrawMs = -1;

  $('mm-title').textContent = D.title;
  $('mm-subtitle').textContent = D.subtitle;

  // ---- markers -------------------------------------------------------------------------------
  // Three styles: as the static plot (the label's colour at ALPHA with a white edge), dimmed
  // (not a search match) and highlighted (a match: larger, opaque, dark edge).
  const STYLES = {
    normal: { r: R, fillAlpha: ALPHA, stroke: '#fff', strokeAlpha: ALPHA, lw: EDGE },
    dim: { r: R, fillAlpha: 0.13, stroke: '#fff', strokeAlpha: 0, lw: 0 },
    hit: { r: R * 1.35 + 0.5, fillAlpha: 1, stroke: '#111', strokeAlpha: 1, lw: 1.5 },
  };
  // Up to SPRITE_MAX points, each is a pre-drawn sprite, in data order (as the static plot); more
  // are batched into one path per label for every chunk of points in data order (without a GPU a
  // canvas draws one path of 1,000 circles ~7x faster than 1,000 images), so the order holds
  // between chunks, and overlapping points of one label in a chunk merge into one shape.
  const SPRITE_MAX = 4000;
  let sprites = null;
  function sprite(fill, st) {
    const half = st.r + st.lw + 1;
    const size = Math.max(1, Math.ceil(2 * half * dpr));
    const c = document.createElement('canvas');
    c.width = c.height = size;
    const g = c.getContext('2d');
    g.scale(size / (2 * half), size / (2 * half));
    g.beginPath();
    g.arc(half, half, st.r, 0, 2 * Math.PI);
    g.globalAlpha = st.fillAlpha;
    g.fillStyle = fill;
    g.fill();
    if (st.lw > 0 && st.strokeAlpha > 0) {
      g.globalAlpha = st.strokeAlpha;
      g.strokeStyle = st.stroke;
      g.lineWidth = st.lw;
      g.stroke();
    }
    return { c, half };
  }
  function makeSprites() {
    sprites = {};
    for (const name of Object.keys(STYLES)) {
      sprites[name] = colours.slice(0, ncat).map((c) => sprite(c, STYLES[name]));
    }
  }
  function drawMarkers(list, style) {
    if (list.length <= SPRITE_MAX) {
      const sp = sprites[style];
      for (const i of list) {
        const s = sp[catOf[i]];
        ctx.drawImage(s.c, sx[i] - s.half, sy[i] - s.half, 2 * s.half, 2 * s.half);
      }
      return;
    }
    const st = STYLES[style], chunk = Math.max(1024, Math.ceil(list.length / 64));
    const TAU = 2 * Math.PI;
    ctx.lineWidth = st.lw;
    ctx.strokeStyle = st.stroke;
    for (let a = 0; a < list.length; a += chunk) {
      const paths = new Map();
      for (let k = a, end = Math.min(list.length, a + chunk); k < end; ++k) {
        const i = list[k], c = catOf[i];
        let p = paths.get(c);
        if (!p) paths.set(c, (p = new Path2D()));
        p.moveTo(sx[i] + st.r, sy[i]);
        p.arc(sx[i], sy[i], st.r, 0, TAU);
      }
      // The edge first, then the fill over it: a chunk's points of one label get one outline
      // around them all, rather than a tangle of edges over each other.
      for (const [c, p] of paths) {
        if (st.lw > 0 && st.strokeAlpha > 0) {
          ctx.globalAlpha = st.strokeAlpha;
          ctx.stroke(p);
        }
        ctx.globalAlpha = st.fillAlpha;
        ctx.fillStyle = colours[c];
        ctx.fill(p);
      }
    }
    ctx.globalAlpha = 1;
  }

  // ---- thumbnails: decoded on first use, redrawn when ready ----------------------------------
  const images = new Array(n);
  function image(i) {
    let im = images[i];
    if (!im) {
      im = images[i] = new Image();
      im.decoding = 'async';
      im.onload = im.onerror = requestDraw;
      im.src = D.thumbnails[i];
    }
    return im.complete && im.naturalWidth > 0 ? im : null;
  }

  // ---- ticks ---------------------------------------------------------------------------------
  function niceStep(lo, hi, target) {
    const raw = ((hi * 0.5 - lo * 0.5) / target) * 2;  // (hi - lo) / target without overflow
    if (!(raw > 0) || !Number.isFinite(raw)) return NaN;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) {
      if (m * p >= raw * (1 - 1e-9)) return Number.isFinite(m * p) ? m * p : 1e308;
    }
    return 1e308;
  }
  function ticks(lo, hi, target) {
    const step = niceStep(lo, hi, target);
    if (!(step > 0)) return { step, values: [] };
    const k0 = Math.ceil(lo / step - 1e-9), k1 = Math.floor(hi / step + 1e-9);
    if (!(k1 - k0 < 1000)) return { step, values: [] };
    const values = [];
    for (let k = k0; k <= k1; ++k) values.push(Math.abs(k * step) < step * 1e-9 ? 0 : k * step);
    return { step, values };
  }
  // As the static plot's labels: as many decimals as the step needs, U+2212 for minus.
  function tickText(v, step) {
    let s;
    const a = Math.abs(v);
    if (v !== 0 && (a >= 1e6 || a < 1e-4 || step < 1e-4)) {
      const digits = Math.max(0, Math.min(15, Math.round(Math.log10(a) - Math.log10(step))));
      s = v.toExponential(digits).replace(/\.?0+e/, 'e');
    } else {
      const decimals = step >= 1 ? 0 : Math.min(20, Math.ceil(-Math.log10(step) - 1e-9));
      s = v.toFixed(decimals);
      if (/^-0(\.0*)?$/.test(s)) s = s.slice(1);
    }
    return s.replace('-', '\u2212');
  }
  const dataX = (f) => unfrac(f, xlo, xhi), dataY = (f) => unfrac(f, ylo, yhi);

  // ---- drawing -------------------------------------------------------------------------------
  function fit() {
    const r = plotEl.getBoundingClientRect();
    const w = Math.max(60, Math.floor(r.width)), h = Math.max(60, Math.floor(r.height));
    const d = window.devicePixelRatio || 1;
    if (w === W && h === H && d === dpr && sprites) return;
    W = w, H = h, dpr = d;
    for (const c of [canvas, overlay]) {
      c.width = Math.round(W * dpr);
      c.height = Math.round(H * dpr);
      c.style.width = W + 'px';
      c.style.height = H + 'px';
    }
    makeSprites();
  }

  let axes = null;
  function layoutAxes() {
    ctx.font = TICK_FONT;
    const top = 12, right = 16;
    const bottom = 8 + 12 + 8 + (D.x_label ? 22 : 0);
    const ph = Math.max(20, H - top - bottom);
    const ytarget = Math.max(2, Math.min(10, Math.floor(ph / 60)));
    const yt = ticks(dataY(view.y0), dataY(view.y1), ytarget);
    const ytext = yt.values.map((v) => tickText(v, yt.step));
    let widest = 0;
    for (const s of ytext) widest = Math.max(widest, ctx.measureText(s).width);
    const left = 8 + (D.y_label ? 22 : 0) + widest + 8;
    P = { x: Math.round(left), y: top, w: Math.max(20, W - Math.round(left) - right), h: ph };
    let target = Math.max(2, Math.min(10, Math.floor(P.w / 90)));
    let xt, xtext;
    for (;;) {  // coarser steps until the labels fit
      xt = ticks(dataX(view.x0), dataX(view.x1), target);
      xtext = xt.values.map((v) => tickText(v, xt.step));
      let wx = 0;
      for (const s of xtext) wx = Math.max(wx, ctx.measureText(s).width);
      if (target <= 2 || (wx + 12) * xt.values.length <= P.w) break;
      --target;
    }
    axes = { xt, xtext, yt, ytext };
  }
  const toSX = (f) => P.x + ((f - view.x0) / (view.x1 - view.x0)) * P.w;
  const toSY = (f) => P.y + P.h - ((f - view.y0) / (view.y1 - view.y0)) * P.h;

  function draw() {
    const start = performance.now();
    fit();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.globalAlpha = 1;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, W, H);
    layoutAxes();
    for (let k = 0; anchor && k < 4; ++k) {  // until the frame stays where it is
      const frame = P.x + ',' + P.w + ',' + P.h;
      pinView(anchor.x, anchor.y, anchor.fx, anchor.fy);
      layoutAxes();
      if (P.x + ',' + P.w + ',' + P.h === frame) break;
    }
    anchor = null;
    const { xt, xtext, yt, ytext } = axes;

    // Grid.
    ctx.strokeStyle = '#e6e6e6';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const v of xt.values) {
      const x = Math.round(toSX(frac(v, xlo, xhi))) + 0.5;
      ctx.moveTo(x, P.y);
      ctx.lineTo(x, P.y + P.h);
    }
    for (const v of yt.values) {
      const y = Math.round(toSY(frac(v, ylo, yhi))) + 0.5;
      ctx.moveTo(P.x, y);
      ctx.lineTo(P.x + P.w, y);
    }
    ctx.stroke();

    // Points: the visible ones of the shown labels, markers then thumbnails, in data order;
    // while searching, the others first and dimmed, then the matches on top.
    ctx.save();
    ctx.beginPath();
    ctx.rect(P.x, P.y, P.w, P.h);
    ctx.clip();
    const kx = P.w / (view.x1 - view.x0), ky = P.h / (view.y1 - view.y0);
    const margin = Math.max(R * 1.4 + 2, THUMB / 2 + 3) + 2;
    const visible = [];
    for (let i = 0; i < n; ++i) {
      if (hidden[catOf[i]]) continue;
      const x = P.x + (fx[i] - view.x0) * kx, y = P.y + P.h - (fy[i] - view.y0) * ky;
      if (x < P.x - margin || x > P.x + P.w + margin) continue;
      if (y < P.y - margin || y > P.y + P.h + margin) continue;
      sx[i] = x;
      sy[i] = y;
      visible.push(i);
    }
    norder = 0;
    let thumbs = 0;
    const layers = match ? [[0, 0], [0, 1], [1, 0], [1, 1]] : [[-1, 0], [-1, 1]];
    for (const [wantMatch, wantThumb] of layers) {
      const list = [];
      for (const i of visible) {
        if (isThumb[i] !== wantThumb) continue;
        if (wantMatch >= 0 && match[i] !== wantMatch) continue;
        order[norder++] = i;
        list.push(i);
      }
      if (!wantThumb) {
        drawMarkers(list, wantMatch < 0 ? 'normal' : wantMatch ? 'hit' : 'dim');
        continue;
      }
      for (const i of list) {
        const x = sx[i], y = sy[i];
        const im = image(i);
        let w = THUMB, h = THUMB;
        if (im) {
          const s = THUMB / Math.max(im.naturalWidth, im.naturalHeight);
          w = im.naturalWidth * s;
          h = im.naturalHeight * s;
          ++thumbs;
        }
        tw[i] = w;
        th[i] = h;
        const f = wantMatch === 1 ? 3 : 2;
        ctx.globalAlpha = wantMatch === 0 ? 0.15 : 1;
        ctx.fillStyle = wantMatch === 1 ? '#111' : colours[catOf[i]];
        ctx.fillRect(x - w / 2 - f, y - h / 2 - f, w + 2 * f, h + 2 * f);
        if (im) {
          ctx.drawImage(im, x - w / 2, y - h / 2, w, h);
        } else {
          ctx.fillStyle = '#ddd';
          ctx.fillRect(x - w / 2, y - h / 2, w, h);
        }
        ctx.globalAlpha = 1;
      }
    }
    const texts = hasTexts ? placeTexts(visible) : 0;
    ctx.restore();

    // Frame, ticks, tick labels, axis labels.
    ctx.strokeStyle = '#8c8c8c';
    ctx.lineWidth = 1;
    ctx.strokeRect(P.x + 0.5, P.y + 0.5, P.w - 1, P.h - 1);
    ctx.fillStyle = '#222';
    ctx.font = TICK_FONT;
    ctx.beginPath();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    xt.values.forEach((v, k) => {
      const x = Math.round(toSX(frac(v, xlo, xhi))) + 0.5;
      ctx.moveTo(x, P.y + P.h);
      ctx.lineTo(x, P.y + P.h + 5);
      ctx.fillText(xtext[k], x, P.y + P.h + 8);
    });
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    yt.values.forEach((v, k) => {
      const y = Math.round(toSY(frac(v, ylo, yhi))) + 0.5;
      ctx.moveTo(P.x - 5, y);
      ctx.lineTo(P.x, y);
      ctx.fillText(ytext[k], P.x - 8, y);
    });
    ctx.stroke();
    ctx.font = LABEL_FONT;
    ctx.textAlign = 'center';
    if (D.x_label) {
      ctx.textBaseline = 'bottom';
      ctx.fillText(D.x_label, P.x + P.w / 2, H - 6, P.w);
    }
    if (D.y_label) {
      ctx.save();
      ctx.translate(8, P.y + P.h / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = 'top';
      ctx.fillText(D.y_label, 0, 0, P.h);
      ctx.restore();
    }

    drawnFlag.fill(0);
    for (let k = 0; k < norder; ++k) drawnFlag[order[k]] = 1;
    stats = { drawn: norder, thumbs, texts, ms: performance.now() - start };
    if (firstDrawMs < 0) firstDrawMs = performance.now();
    drawOverlay();
  }

  // Texts beside their points, as the static plot places them: the first of eight spots that
  // stays inside the axes and covers no marker, thumbnail or earlier text (an occupancy grid of
  // 2-pixel cells). While searching only the matches get theirs.
  const textWidth = new Float32Array(n).fill(-1);
  const shortText = new Map();  // point -> its text cut to maxWidth with an ellipsis
  function fitText(i, maxWidth) {
    const t = D.texts[i];
    if (textWidth[i] < 0) textWidth[i] = ctx.measureText(t).width;
    if (textWidth[i] <= maxWidth) return [t, textWidth[i]];
    const key = i + ':' + Math.round(maxWidth);
    let s = shortText.get(key);
    if (!s) {
      const cps = Array.from(t);
      let lo = 0, hi = cps.length;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (ctx.measureText(cps.slice(0, mid).join('') + '\u2026').width <= maxWidth) lo = mid;
        else hi = mid - 1;
      }
      s = cps.slice(0, lo).join('') + '\u2026';
      shortText.set(key, s);
    }
    return [s, ctx.measureText(s).width];
  }
  function placeTexts(visible) {
    const cs = 2, gw = Math.ceil(P.w / cs) + 1, gh = Math.ceil(P.h / cs) + 1;
    const occ = new Uint8Array(gw * gh);
    const span = (x0, y0, x1, y1) => [
      Math.max(0, Math.floor((x0 - P.x) / cs)), Math.max(0, Math.floor((y0 - P.y) / cs)),
      Math.min(gw - 1, Math.floor((x1 - P.x) / cs)), Math.min(gh - 1, Math.floor((y1 - P.y) / cs))];
    const mark = (x0, y0, x1, y1) => {
      const [a, b, c, d] = span(x0, y0, x1, y1);
      for (let y = b; y <= d; ++y) occ.fill(1, y * gw + a, y * gw + c + 1);
    };
    const free = (x0, y0, x1, y1) => {
      if (x0 < P.x || y0 < P.y || x1 > P.x + P.w || y1 > P.y + P.h) return false;
      const [a, b, c, d] = span(x0, y0, x1, y1);
      for (let y = b; y <= d; ++y) {
        for (let x = a; x <= c; ++x) if (occ[y * gw + x]) return false;
      }
      return true;
    };
    const box = (i) => (isThumb[i] ? [tw[i] / 2 + 2, th[i] / 2 + 2] : [R, R]);
    for (let k = 0; k < norder; ++k) {
      const i = order[k], [bw, bh] = box(i);
      mark(sx[i] - bw, sy[i] - bh, sx[i] + bw, sy[i] + bh);
    }
    ctx.font = TEXT_FONT;
    ctx.fillStyle = '#222';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    const h = 12, gap = 2, maxWidth = 0.3 * P.w;
    let placed = 0;
    for (const i of visible) {
      const t = D.texts[i];
      if (t === '' || (match && !match[i])) continue;
      if (placed >= 3000) break;
      const [text, w] = fitText(i, maxWidth);
      const [bw, bh] = box(i);
      const l = sx[i] - bw, r = sx[i] + bw, u = sy[i] - bh, b = sy[i] + bh;
      const cx = sx[i], cy = sy[i];
      const spots = [[r + gap, cy - h / 2], [l - gap - w, cy - h / 2], [cx - w / 2, u - gap - h],
        [cx - w / 2, b + gap], [r + gap, u - h], [r + gap, b], [l - gap - w, u - h],
        [l - gap - w, b]];
      for (const [x, y] of spots) {
        if (!free(x, y, x + w, y + h)) continue;
        mark(x, y, x + w, y + h);
        ctx.fillText(text, x, y + 1);
        ++placed;
        break;
      }
    }
    return placed;
  }

  // The hover and pinned rings.
  function ring(i, colour, width) {
    if (i < 0 || !shownAndVisible(i)) return;
    octx.strokeStyle = colour;
    octx.lineWidth = width;
    octx.beginPath();
    if (isThumb[i]) {
      octx.strokeRect(sx[i] - tw[i] / 2 - 4, sy[i] - th[i] / 2 - 4, tw[i] + 8, th[i] + 8);
    } else {
      octx.arc(sx[i], sy[i], (match && match[i] ? STYLES.hit.r : R) + 3.5, 0, 2 * Math.PI);
      octx.stroke();
    }
  }
  function drawOverlay() {
    octx.setTransform(dpr, 0, 0, dpr, 0, 0);
    octx.clearRect(0, 0, W, H);
    octx.save();
    octx.beginPath();
    octx.rect(P.x, P.y, P.w, P.h);
    octx.clip();
    ring(pinned, '#000', 2.5);
    if (hover !== pinned) ring(hover, '#333', 1.5);
    octx.restore();
    if (pinned >= 0 && shownAndVisible(pinned)) showTip(pinned);
    else if (hover >= 0 && shownAndVisible(hover)) showTip(hover);
    else hideTip();
    writeState();
  }
  function shownAndVisible(i) {
    return i >= 0 && drawnFlag[i] === 1 && sx[i] >= P.x && sx[i] <= P.x + P.w && sy[i] >= P.y &&
      sy[i] <= P.y + P.h;
  }

  // One draw per frame however many changes come; a timer stands in for the frame where the
  // browser gives none (a hidden tab; headless Chromium gives the first frames only).
  let frame = null;
  function requestDraw() {
    if (frame) return;
    const run = () => {
      if (!frame) return;
      cancelAnimationFrame(frame.raf);
      clearTimeout(frame.timer);
      frame = null;
      draw();
    };
    frame = { raf: requestAnimationFrame(run), timer: setTimeout(run, 100) };
  }

  // ---- tooltip -------------------------------------------------------------------------------
  let tipShown = -1;
  function showTip(i) {
    if (tipShown !== i) {
      tipShown = i;
      tip.replaceChildren();
      const add = (cls, text) => {
        const e = document.createElement('div');
        e.className = cls;
        if (text !== undefined) e.textContent = text;
        tip.appendChild(e);
        return e;
      };
      add('mm-id', idOf(i));
      const cap = hasCaps && D.captions[i] !== '' ? D.captions[i] : hasTexts ? D.texts[i] : '';
      if (cap !== '') add('mm-cap', cap);
      if (names.length) {
        const e = add('mm-label');
        const dot = document.createElement('span');
        dot.className = 'mm-dot';
        dot.style.background = colours[catOf[i]];
        e.append(dot, names[catOf[i]] === '' ? '(empty label)' : names[catOf[i]]);
      }
      const num = (v) => String(Number(v.toPrecision(6)));
      add('mm-xy', 'x ' + num(D.x[i]) + ', y ' + num(D.y[i]));
      if (isThumb[i]) {
        const img = document.createElement('img');
        img.alt = 'picture of ' + idOf(i);
        img.src = D.thumbnails[i];
        img.onload = () => place(i);
        tip.appendChild(img);
      }
    }
    tip.classList.toggle('pinned', i === pinned);
    tip.hidden = false;
    place(i);
  }
  function place(i) {
    if (tip.hidden || tipShown !== i) return;
    const gap = (isThumb[i] ? Math.max(tw[i], th[i]) / 2 : R) + 10;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let left = sx[i] + gap, top = sy[i] + gap;
    if (left + w > W - 4) left = Math.max(4, sx[i] - gap - w);
    if (top + h > H - 4) top = Math.max(4, sy[i] - gap - h);
    tip.style.left = left + 'px';
    tip.style.top = top + 'px';
  }
  function hideTip() {
    tip.hidden = true;
    tipShown = -1;
  }

  // The topmost drawn point under (x, y): markers within max(radius, 6 px) of their centre,
  // thumbnails within their frame; the nearest centre wins, then the one drawn last.
  function pick(x, y) {
    if (x < P.x || x > P.x + P.w || y < P.y || y > P.y + P.h) return -1;
    const rm = Math.max(R + EDGE, 6);
    let best = -1, bestD = Infinity;
    for (let k = norder - 1; k >= 0; --k) {
      const i = order[k], dx = Math.abs(sx[i] - x), dy = Math.abs(sy[i] - y);
      if (isThumb[i]) {
        if (dx > tw[i] / 2 + 2 || dy > th[i] / 2 + 2) continue;
      } else if (dx > rm || dy > rm || dx * dx + dy * dy > rm * rm) {
        continue;
      }
      const d = dx * dx + dy * dy;
      if (d < bestD) best = i, bestD = d;
    }
    return best;
  }

  // ---- zoom and pan --------------------------------------------------------------------------
  const MIN_SPAN = 1e-7, MAX_SPAN = 20;
  // The data (as fractions of the initial view) under the CSS pixel (x, y) of the plot.
  const fracAt = (x, y) => [view.x0 + ((x - P.x) / P.w) * (view.x1 - view.x0),
    view.y0 + ((P.y + P.h - y) / P.h) * (view.y1 - view.y0)];
  // Shifts the view so that the fractions (fx, fy) are at the pixel (x, y) of the current frame.
  function pinView(x, y, fx, fy) {
    const wx = view.x1 - view.x0, wy = view.y1 - view.y0;
    view.x0 = fx - ((x - P.x) / P.w) * wx;
    view.x1 = view.x0 + wx;
    view.y0 = fy - ((P.y + P.h - y) / P.h) * wy;
    view.y1 = view.y0 + wy;
  }
  // What zooming and dragging keep in place: the draw puts these data under this pixel again
  // after the axes' labels have changed the frame (wider tick labels move it).
  let anchor = null;
  function zoomAt(px, py, factor) {  // factor > 1 zooms in, about the CSS pixel (px, py)
    const [fx, fy] = fracAt(px, py);
    const wx = view.x1 - view.x0, wy = view.y1 - view.y0;
    view.x1 = view.x0 + Math.min(MAX_SPAN, Math.max(MIN_SPAN, wx / factor));
    view.y1 = view.y0 + Math.min(MAX_SPAN, Math.max(MIN_SPAN, wy / factor));
    pinView(px, py, fx, fy);
    anchor = { x: px, y: py, fx, fy };
    changed();
  }
  function panBy(dx, dy) {  // CSS pixels
    const ux = (view.x1 - view.x0) / P.w, uy = (view.y1 - view.y0) / P.h;
    view.x0 -= dx * ux, view.x1 -= dx * ux;
    view.y0 += dy * uy, view.y1 += dy * uy;
    changed();
  }
  function reset() {
    view = { ...HOME };
    changed();
  }
  // Fits the view to the given points (the matches, on Enter in the search box).
  function zoomTo(points) {
    if (!points.length) return;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const i of points) {
      x0 = Math.min(x0, fx[i]), x1 = Math.max(x1, fx[i]);
      y0 = Math.min(y0, fy[i]), y1 = Math.max(y1, fy[i]);
    }
    const px = Math.max((x1 - x0) * 0.08, 0.02), py = Math.max((y1 - y0) * 0.08, 0.02);
    view = { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py };
    changed();
  }

  plotEl.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = plotEl.getBoundingClientRect();
    const unit = e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 400 : 1;
    const f = Math.exp(Math.max(-1, Math.min(1, (-e.deltaY * unit) / 500)));
    zoomAt(e.clientX - r.left, e.clientY - r.top, f);
  }, { passive: false });

  const pointers = new Map();
  let drag = null, pinch = null;
  plotEl.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    try {
      plotEl.setPointerCapture(e.pointerId);
    } catch (err) {
      // Not an active pointer (a synthetic event): the map works without the capture.
    }
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 1) {
      const r = plotEl.getBoundingClientRect();
      drag = { x: e.clientX, y: e.clientY, moved: false,
        f: fracAt(e.clientX - r.left, e.clientY - r.top) };
    } else if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { d: Math.hypot(a.x - b.x, a.y - b.y) };
      drag = null;
    }
  });
  plotEl.addEventListener('pointermove', (e) => {
    const r = plotEl.getBoundingClientRect();
    const p = pointers.get(e.pointerId);
    if (p) {
      p.x = e.clientX, p.y = e.clientY;
      if (pinch && pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y);
        if (pinch.d > 0 && d > 0) {
          zoomAt((a.x + b.x) / 2 - r.left, (a.y + b.y) / 2 - r.top, d / pinch.d);
        }
        pinch.d = d;
        return;
      }
      if (drag) {  // the data grabbed stays under the pointer
        if (!drag.moved && Math.hypot(e.clientX - drag.x, e.clientY - drag.y) < 4) return;
        drag.moved = true;
        plotEl.classList.add('dragging');
        const x = e.clientX - r.left, y = e.clientY - r.top;
        pinView(x, y, drag.f[0], drag.f[1]);
        anchor = { x, y, fx: drag.f[0], fy: drag.f[1] };
        changed();
        return;
      }
    }
    const i = pick(e.clientX - r.left, e.clientY - r.top);
    plotEl.classList.toggle('on-point', i >= 0);
    if (i !== hover) {
      hover = i;
      drawOverlay();
    }
  });
  const release = (e) => {
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinch = null;
    if (drag && !drag.moved && e.type === 'pointerup') {
      const r = plotEl.getBoundingClientRect();
      const i = pick(e.clientX - r.left, e.clientY - r.top);
      pinned = i === pinned ? -1 : i;
      drawOverlay();
      saveHash();
    }
    if (!pointers.size) drag = null;
    plotEl.classList.remove('dragging');
  };
  plotEl.addEventListener('pointerup', release);
  plotEl.addEventListener('pointercancel', release);
  plotEl.addEventListener('pointerleave', () => {
    if (hover >= 0 && !pointers.size) {
      hover = -1;
      drawOverlay();
    }
  });
  plotEl.addEventListener('dblclick', (e) => {
    e.preventDefault();
    reset();
  });
  $('mm-reset').addEventListener('click', reset);
  // A pinned tooltip can be selected and copied from; pressing on it is not a click on the map.
  tip.addEventListener('pointerdown', (e) => e.stopPropagation());
  document.addEventListener('keydown', (e) => {
    if (e.target === search || e.ctrlKey || e.metaKey || e.altKey) return;
    const cx = P.x + P.w / 2, cy = P.y + P.h / 2;
    const k = e.key;
    if (k === '+' || k === '=') zoomAt(cx, cy, 1.5);
    else if (k === '-' || k === '_') zoomAt(cx, cy, 1 / 1.5);
    else if (k === '0') reset();
    else if (k === 'ArrowLeft') panBy(P.w / 8, 0);
    else if (k === 'ArrowRight') panBy(-P.w / 8, 0);
    else if (k === 'ArrowUp') panBy(0, P.h / 8);
    else if (k === 'ArrowDown') panBy(0, -P.h / 8);
    else if (k === '/') search.focus();
    else if (k === 'Escape' && pinned >= 0) pinned = -1, drawOverlay(), saveHash();
    else return;
    e.preventDefault();
  });

  // ---- search --------------------------------------------------------------------------------
  function runSearch() {
    const q = search.value.trim().toLowerCase();
    query = q;
    matchPerCat.fill(0);
    matchShown = matchHidden = 0;
    if (q === '') {
      match = null;
    } else {
      if (!haystack) {
        haystack = new Array(n);
        for (let i = 0; i < n; ++i) {
          haystack[i] = ((hasIds ? D.ids[i] : '') + '\n' + (hasCaps ? D.captions[i] : '') + '\n' +
            (hasTexts ? D.texts[i] : '')).toLowerCase();
        }
      }
      match = new Uint8Array(n);
      for (let i = 0; i < n; ++i) {
        if (haystack[i].includes(q)) match[i] = 1, matchPerCat[catOf[i]]++;
      }
    }
    recount();
    changed();
  }
  function recount() {
    matchShown = matchHidden = 0;
    if (match) {
      for (let k = 0; k < ncat; ++k) {
        if (hidden[k]) matchHidden += matchPerCat[k];
        else matchShown += matchPerCat[k];
      }
    }
    let shown = 0;
    for (let k = 0; k < ncat; ++k) if (!hidden[k]) shown += counts[k];
    if (!match) {
      countEl.textContent = fmt(n) + (n === 1 ? ' point' : ' points') +
        (shown < n ? ' (' + fmt(shown) + ' shown)' : '');
    } else {
      countEl.textContent = fmt(matchShown) + (matchShown === 1 ? ' match' : ' matches') +
        (matchHidden ? ' (+' + fmt(matchHidden) + ' in hidden labels)' : '');
    }
    countEl.classList.toggle('none', !!match && matchShown === 0);
    legendCounts();
  }
  let searchTimer = 0;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, n > 20000 ? 150 : 0);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      clearTimeout(searchTimer);
      runSearch();
      if (match) {
        const pts = [];
        for (let i = 0; i < n; ++i) if (match[i] && !hidden[catOf[i]]) pts.push(i);
        zoomTo(pts);
      }
    } else if (e.key === 'Escape') {
      search.value = '';
      runSearch();
    }
  });

  // ---- legend --------------------------------------------------------------------------------
  const entries = [];
  if (names.length) {
    $('mm-legend').hidden = false;
    $('mm-legend-title').textContent = D.legend_title || 'labels';
    const list = $('mm-legend-list');
    names.forEach((name, k) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'mm-entry';
      b.title = 'Click: hide or show; shift-click: show only this label';
      const dot = document.createElement('span');
      dot.className = 'mm-dot';
      dot.style.background = colours[k];
      const nm = document.createElement('span');
      nm.className = 'mm-name' + (name === '' ? ' empty' : '');
      nm.textContent = name === '' ? '(empty)' : name;
      const c = document.createElement('span');
      c.className = 'mm-n';
      b.append(dot, nm, c);
      b.addEventListener('click', (e) => {
        if (e.shiftKey || e.altKey) only([k]);
        else toggle(k);
      });
      const o = document.createElement('button');
      o.type = 'button';
      o.className = 'mm-only';
      o.textContent = 'only';
      o.title = 'Show only this label (click again to show all)';
      o.addEventListener('click', () => only([k]));
      li.append(b, o);
      list.appendChild(li);
      entries.push({ b, c });
    });
    // Room for the longest count a search can show ("1,234 / 5,678"), so that searching does
    // not widen the legend and move the map.
    let longest = 0;
    for (let k = 0; k < ncat; ++k) longest = Math.max(longest, 2 * fmt(counts[k]).length + 3);
    for (const { c } of entries) c.style.minWidth = longest * 0.62 + 'em';
  }
  function legendCounts() {
    entries.forEach(({ b, c }, k) => {
      b.setAttribute('aria-pressed', hidden[k] ? 'false' : 'true');
      c.textContent = match ? fmt(matchPerCat[k]) + ' / ' + fmt(counts[k]) : fmt(counts[k]);
    });
  }
  function toggle(k) {
    hidden[k] ^= 1;
    filterChanged();
  }
  // Shows only the labels `ks`; when exactly those are shown already, shows everything again.
  function only(ks) {
    const want = new Uint8Array(ncat).fill(1);
    for (const k of ks) want[k] = 0;
    const same = want.every((v, k) => v === hidden[k]);
    hidden.set(same ? new Uint8Array(ncat) : want);
    filterChanged();
  }
  $('mm-all').addEventListener('click', () => {
    hidden.fill(0);
    filterChanged();
  });
  $('mm-none').addEventListener('click', () => {
    hidden.fill(1);
    filterChanged();
  });
  function filterChanged() {
    recount();
    changed();
  }

  // ---- URL fragment --------------------------------------------------------------------------
  const enc = (s) => encodeURIComponent(s);
  const dec = (s) => {
    try {
      return decodeURIComponent(s);
    } catch (err) {
      return s;
    }
  };
  function readHash() {
    const p = Object.create(null);
    for (const part of location.hash.replace(/^#/, '').split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      p[dec(eq < 0 ? part : part.slice(0, eq))] = eq < 0 ? '' : part.slice(eq + 1);
    }
    return p;
  }
  const labelIndex = (label) => {
    const ks = [];
    names.forEach((nm, k) => {
      if (nm === label) ks.push(k);
    });
    return ks;
  };
  function applyHash() {
    const p = readHash();
    search.value = 'search' in p ? dec(p.search) : '';
    hidden.fill(0);
    if ('only' in p) {
      hidden.fill(1);
      for (const s of p.only.split(',')) for (const k of labelIndex(dec(s))) hidden[k] = 0;
    }
    if ('hide' in p) {
      for (const s of p.hide.split(',')) for (const k of labelIndex(dec(s))) hidden[k] = 1;
    }
    view = { ...HOME };
    if ('view' in p) {
      const v = p.view.split(',').map((s) => Number(dec(s)));
      if (v.length === 4 && v.every(Number.isFinite) && v[0] !== v[1] && v[2] !== v[3]) {
        const a = frac(Math.min(v[0], v[1]), xlo, xhi), b = frac(Math.max(v[0], v[1]), xlo, xhi);
        const c = frac(Math.min(v[2], v[3]), ylo, yhi), d = frac(Math.max(v[2], v[3]), ylo, yhi);
        if ([a, b, c, d].every(Number.isFinite) && b - a >= MIN_SPAN && d - c >= MIN_SPAN) {
          view = { x0: a, x1: b, y0: c, y1: d };
        }
      }
    }
    pinned = -1;
    if ('tip' in p) {
      const want = dec(p.tip);
      if (hasIds) pinned = D.ids.indexOf(want);
      if (pinned < 0 && /^#?\d+$/.test(want)) {
        const row = Number(want.replace('#', ''));
        if (row < n && (!hasIds || D.ids[row] === '')) pinned = row;
      }
    }
    runSearch();
  }
  let hashTimer = 0;
  function saveHash() {
    clearTimeout(hashTimer);
    hashTimer = setTimeout(() => {
      const parts = [];
      if (search.value.trim()) parts.push('search=' + enc(search.value.trim()));
      const hiddenNames = names.filter((_, k) => hidden[k]);
      if (hiddenNames.length) {
        if (hiddenNames.length > names.length / 2) {
          parts.push('only=' + names.filter((_, k) => !hidden[k]).map(enc).join(','));
        } else {
          parts.push('hide=' + hiddenNames.map(enc).join(','));
        }
      }
      if (view.x0 !== 0 || view.x1 !== 1 || view.y0 !== 0 || view.y1 !== 1) {
        parts.push('view=' + viewText().map(enc).join(','));
      }
      if (pinned >= 0) parts.push('tip=' + enc(idOf(pinned)));
      const h = parts.join('&');
      if (h === location.hash.replace(/^#/, '')) return;
      try {
        history.replaceState(null, '', h ? '#' + h : location.pathname + location.search);
      } catch (err) {
        // Some browsers refuse history changes on file: pages; the map works without.
      }
    }, 250);
  }
  const viewText = () =>
    [dataX(view.x0), dataX(view.x1), dataY(view.y0), dataY(view.y1)]
      .map((v) => String(Number(v.toPrecision(7))));
  window.addEventListener('hashchange', applyHash);

  function changed() {
    requestDraw();
    saveHash();
  }

  // ---- state for tests -----------------------------------------------------------------------
  function writeState() {
    let shown = 0;
    for (let k = 0; k < ncat; ++k) if (!hidden[k]) shown += counts[k];
    const s = {
      ready: '1',
      points: n,
      drawn: stats.drawn,
      shown,
      legend: entries.length,
      hidden: names.filter((_, k) => hidden[k]).map(enc).join(','),
      query,
      matches: match ? matchShown : '',
      'matches-hidden': match ? matchHidden : '',
      view: viewText().join(','),
      tip: tip.hidden ? '' : idOf(tipShown),
      thumbs: stats.thumbs,
      texts: stats.texts,
      'canvas-size': W + 'x' + H,
      plot: [P.x, P.y, P.w, P.h].map((v) => v.toFixed(1)).join(','),
      'parse-ms': parseMs.toFixed(1),
      'draw-ms': stats.ms.toFixed(1),
      'load-ms': firstDrawMs.toFixed(1),
    };
    for (const [k, v] of Object.entries(s)) stateEl.setAttribute('data-' + k, String(v));
  }

  // ---- start ---------------------------------------------------------------------------------
  new ResizeObserver(requestDraw).observe(plotEl);
  window.addEventListener('resize', requestDraw);
  applyHash();
  // The first frame synchronously, so that the page is complete when its scripts have run.
  if (frame) cancelAnimationFrame(frame.raf), clearTimeout(frame.timer), frame = null;
  draw();
})();
