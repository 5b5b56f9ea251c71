"""The derivative of P(x) = −2x² + 12x − 10 three ways, and gradient ascent to its maximum.

1. By the limit definition: forward (P(x+h) − P(x))/h and central (P(x+h) − P(x−h))/2h for
   h = 1, 0.1, …, 1e-10 in float64, against P'(x) = −4x + 12 and jax.grad(P). The forward error
   is 2h (P'' = −4) until rounding takes over, at most about eps·12/h (from the terms of size ~12
   that cancel); the central difference of a quadratic has no truncation error at all, so all that is
   left of its error is rounding.
2. Gradient ascent x ← x + η P'(x) from x = 12 to the critical point x = 3, where P'(3) = 0.
   Since x − 3 ← (1 − 4η)(x − 3), it converges for 0 < η < 0.5, and monotonically for η ≤ 0.25.
3. Trajectories for a too-small, a good and a too-large learning rate, also drawn on the curve of P
   (fnn.plot.descent): crawling up one side, climbing to the top, jumping ever further across it.

    python experiments/derivative.py --out results/derivative
"""
from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from _common import Summary, output_dir, parser, plt, savefig


def P(x):
    return -2.0 * x ** 2 + 12.0 * x - 10.0


def P_prime(x):
    return -4.0 * x + 12.0


def finite_differences(x0: float, hs, dtype):
    """(forward, central) difference quotients of P at x0 for each h, computed in `dtype`.

    Op by op, not under jit: each operation rounds as written (a compiled version may fuse
    multiply-adds and round differently).
    """
    x = jnp.asarray(x0, dtype)
    h = jnp.asarray(hs, dtype)
    forward = (P(x + h) - P(x)) / h
    central = (P(x + h) - P(x - h)) / (2 * h)
    return np.asarray(forward, np.float64), np.asarray(central, np.float64)


_grad_P = jax.jit(jax.grad(P))


def gradient_ascent(x0: float, learning_rate: float, max_iter: int, tol: float):
    """x ← x + η P'(x) with P' from jax.grad, until |P'(x)| < tol: (trajectory, iterations, converged)."""
    xs = [x0]
    x = jnp.asarray(x0, jnp.float64)
    for i in range(1, max_iter + 1):
        x = x + learning_rate * _grad_P(x)
        xs.append(float(x))
        if not np.isfinite(xs[-1]) or abs(xs[-1]) > 1e6:
            return np.array(xs), i, False
        if abs(float(P_prime(x))) < tol:
            return np.array(xs), i, True
    return np.array(xs), max_iter, False


def main(argv=None) -> dict:
    p = parser("derivative", __doc__.splitlines()[0])
    p.add_argument("--x0", type=float, default=2.0, help="where to differentiate (default: %(default)s)")
    p.add_argument("--start", type=float, default=12.0, help="gradient ascent start (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.1, help="the good learning rate (default: %(default)s)")
    p.add_argument("--tol", type=float, default=1e-6, help="stop when |P'(x)| < tol (default: %(default)s)")
    args = p.parse_args(argv)
    out = output_dir(args.out)
    # --seed is accepted for a uniform interface; nothing here is random.
    s = Summary("Derivative of P(x) = -2x^2 + 12x - 10")
    with jax.enable_x64(True):
        return _run(args, out, s)


def _run(args, out, s: Summary) -> dict:
    hs = 10.0 ** -np.arange(0, 11 if not args.quick else 9)
    x0 = args.x0
    exact = P_prime(x0)
    autodiff = float(_grad_P(jnp.asarray(x0, jnp.float64)))
    fwd, cen = finite_differences(x0, hs, jnp.float64)
    fwd32, _ = finite_differences(x0, hs, jnp.float32)
    err_f, err_c, err_f32 = np.abs(fwd - exact), np.abs(cen - exact), np.abs(fwd32 - exact)

    s.add(f"at x = {x0:g}: P'(x) = -4x + 12 = {exact:.17g};  jax.grad(P)(x) = {autodiff:.17g} "
          f"(|difference| {abs(autodiff - exact):.1e})")
    s.add("limit definition in float64 (forward error = 2h + rounding; central: rounding only, P is quadratic):")
    s.table(["h", "forward", "|fwd - P'|", "central", "|cen - P'|"],
            [(h, f, ef, c, ec) for h, f, ef, c, ec in zip(hs, fwd, err_f, cen, err_c)],
            ["{:.0e}", "{:.12f}", "{:.2e}", "{:.12f}", "{:.2e}"], name="finite_differences")
    best = int(np.argmin(err_f))
    bound = np.finfo(np.float64).eps * 12 / hs[-1]
    s.add(f"forward error smallest at h = {hs[best]:.0e} ({err_f[best]:.1e}); at h = {hs[-1]:.0e} it is "
          f"{err_f[-1]:.1e} again: rounding, within its bound eps*12/h ({bound:.1e} there)")
    best32 = int(np.argmin(err_f32))
    s.add(f"(in float32 the forward error is smallest already at h = {hs[best32]:.0e}: {err_f32[best32]:.1e})")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    floor = 1e-17  # exact zeros drawn at the bottom of the log axis
    ax.loglog(hs, np.maximum(err_f, floor), "o-", label="forward, float64")
    ax.loglog(hs, np.maximum(err_c, floor), "s-", label="central, float64")
    ax.loglog(hs, np.maximum(err_f32, floor), "x--", alpha=0.6, label="forward, float32")
    ax.loglog(hs, 2 * hs, ":", color="gray", label="2h (truncation)")
    ax.set_xlabel("h")
    ax.set_ylabel("|difference quotient − P'(x)|")
    ax.set_title(f"Limit definition at x = {x0:g}: error vs h")
    ax.invert_xaxis()
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    savefig(fig, out, "finite_differences.png")

    s.add()
    xs, iters, ok = gradient_ascent(args.start, args.lr, 1000, args.tol)
    s.add(f"gradient ascent x <- x + {args.lr:g} P'(x) from x = {args.start:g}: "
          f"{'converged' if ok else 'did NOT converge'} in {iters} iterations to x = {xs[-1]:.9f} "
          f"(P = {P(xs[-1]):.9f}, |P'| < {args.tol:g}); critical point x = 3, P(3) = 8")

    s.record("ascent", {"start": args.start, "learning_rate": args.lr, "tol": args.tol, "x": xs[-1],
                        "iterations": iters, "converged": ok})
    s.record("grad_error", abs(autodiff - exact))
    s.record("best_forward", {"h": hs[best], "error": err_f[best]})
    rates = {"too small": 0.01, "good": args.lr, "too large": 0.55}
    n_show = 40 if not args.quick else 20
    runs = {}
    for label, lr in rates.items():
        traj, it, conv = gradient_ascent(args.start, lr, n_show, args.tol)
        runs[label] = (lr, traj, it, conv)
        status = f"converged in {it} iterations" if conv else (
            f"after {len(traj) - 1} iterations x = {traj[-1]:.4g}")
        s.add(f"  eta = {lr:<5g} ({label:9s}, x-3 scales by {1 - 4 * lr:+.2f} a step): {status}")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, (lr, traj, _, _) in runs.items():
        k = np.arange(len(traj))
        axes[0].plot(k[:16], traj[:16], "o-", ms=3, label=f"η = {lr:g} ({label})")
        axes[1].semilogy(k, np.maximum(np.abs(traj - 3.0), 1e-16), "o-", ms=3, label=f"η = {lr:g} ({label})")
    axes[0].axhline(3, color="gray", ls=":", label="x = 3 (P'(x) = 0)")
    axes[0].set_ylim(-12, 20)
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("x")
    axes[0].set_title(f"gradient ascent on P from x = {args.start:g} (clipped)")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    axes[1].axhline(args.tol / 4, color="gray", ls=":", label="|x − 3| at |P'| = tol")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("|x − 3|")
    axes[1].set_title("distance to the critical point x = 3")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3)
    savefig(fig, out, "ascent.png")

    steps = 12  # enough to see each behaviour; the too-large run would otherwise dwarf the parabola
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, (label, (lr, traj, _, _)) in zip(axes, runs.items()):
        fnn.plot.descent(P, traj[:steps + 1], ax)
        ax.set_title(f"η = {lr:g} ({label}): {min(steps, len(traj) - 1)} steps on P", fontsize=10)
    savefig(fig, out, "descent.png")
    s.write(out)

    small, large = runs["too small"], runs["too large"]
    return {
        "x0": x0, "exact": float(exact), "grad": autodiff, "grad_error": abs(autodiff - exact),
        "hs": hs.tolist(), "forward_error": err_f.tolist(), "central_error": err_c.tolist(),
        "best_forward_h": float(hs[best]), "best_forward_error": float(err_f[best]),
        "ascent_x": float(xs[-1]), "ascent_iterations": iters, "ascent_converged": ok,
        "small_lr_distance": float(abs(small[1][-1] - 3)), "small_lr_converged": small[3],
        "large_lr_distance": float(abs(large[1][-1] - 3)), "large_lr_converged": large[3],
    }


if __name__ == "__main__":
    main(sys.argv[1:])
