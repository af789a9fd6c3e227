// The stand-ins scripts/build.mjs gives src/ for Node built-in modules it loads on first use
// (LAZY_BUILTINS there): an ES module of one forwarding function per function the real
// module exports.

/**
 * Modules whose classes src/ extends at its modules' top level (`class Tap extends
 * Transform`: src/images/layers.ts, tarstream.ts, id-shift.ts, initialised with the image
 * service, as by `image list`) or calls static methods of (Readable.from, Duplex.from), or
 * tests with instanceof: node:stream, ~1.5 ms to load with its internals. Its stand-ins are
 * made whole classes when the real module loads, which is no later than the first
 * construction or call: each stand-in's prototype (and the stand-in itself) then inherits
 * from the real class's, so a subclass made before the load has the real methods; static
 * functions forward; `x instanceof Readable` asks the real class.
 */
const CLASSES = new Set(['stream']);
function classStandIns(real) {
  const classes = Object.keys(real).filter((k) => typeof real[k] === 'function' && real[k].prototype && /^[A-Z]\w*$/.test(k));
  const statics = (k) => Object.getOwnPropertyNames(real[k]).filter((p) => /^[a-z]\w*$/.test(p) && typeof real[k][p] === 'function');
  return (
    `\nconst classes = [${classes.map((k) => `[${k}, '${k}']`).join(', ')}];\n` +
    `const loadReal = load;\n` +
    // after the first load: each stand-in's prototype chain through the real class
    `load = () => real ?? (loadReal(), classes.forEach(([f, k]) => { Object.setPrototypeOf(f.prototype, real[k].prototype); Object.setPrototypeOf(f, real[k]); }), real);\n` +
    `for (const [f, k] of classes) Object.defineProperty(f, Symbol.hasInstance, { value(x) { return this === f ? x instanceof load()[k] : Function.prototype[Symbol.hasInstance].call(this, x); } });\n` +
    classes
      .flatMap((k) => statics(k).map((p) => `${k}.${p} = function (...a) { return load().${k}.${p}.apply(load().${k}, a); };`))
      .join('\n') +
    '\n'
  );
}

/**
 * The stand-in for node:`path` (`real`: that module, read at build time for its export
 * names), with `extra` source appended before the functions. Its other exports are left
 * out: importing one fails the build, it does not go wrong later.
 */
export function standInSource(path, real, extra = '') {
  const names = Object.keys(real).filter((k) => typeof real[k] === 'function' && /^[A-Za-z_$][\w$]*$/.test(k));
  return (
    `let real; let load = () => (real ??= require('node:${path}'));\n` +
    extra +
    // `new X()` constructs the real class (new.target is the stand-in itself then)
    names
      .map(
        (k) =>
          `export function ${k}(...a) { return new.target ? Reflect.construct(load().${k}, a, new.target === ${k} ? load().${k} : new.target) : load().${k}.apply(this, a); }`,
      )
      .join('\n') +
    (CLASSES.has(path) ? classStandIns(real) : '')
  );
}
