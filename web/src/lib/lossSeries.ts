// The loss curve of a training run: epochs as they arrive (GET /v1/training-runs/{id}
// while it trains, then the registered version's history), merged into one series.

export interface Epoch {
  epoch: number
  loss: number
  [metric: string]: number
}

/** `known` and `incoming` as one history, one entry per epoch in order; an epoch both
 * hold takes `incoming`'s (a resumed run re-reports, the final history is the word).
 * Entries without a finite epoch and loss are dropped. */
export function mergeHistory(known: Epoch[], incoming: unknown[]): Epoch[] {
  const byEpoch = new Map<number, Epoch>()
  for (const e of [...known, ...incoming]) {
    if (typeof e !== 'object' || e === null) continue
    const { epoch, loss } = e as Record<string, unknown>
    if (typeof epoch !== 'number' || typeof loss !== 'number' || !Number.isFinite(loss)) continue
    byEpoch.set(epoch, e as Epoch)
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch)
}

export interface Series {
  label: string
  data: (number | null)[]
}

/** The curves to draw: `loss` first, then `val_loss`, over the epochs 1..n (a gap for an
 * epoch a curve lacks). */
export function lossSeries(history: Epoch[]): { epochs: number[]; series: Series[] } {
  const epochs = history.map((h) => h.epoch)
  const keys = ['loss', 'val_loss'].filter((k) => history.some((h) => typeof h[k] === 'number'))
  return {
    epochs,
    series: keys.map((k) => ({ label: k, data: history.map((h) => (typeof h[k] === 'number' ? h[k] : null)) })),
  }
}
