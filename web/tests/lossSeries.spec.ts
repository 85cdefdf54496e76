// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { lossSeries, mergeHistory } from '../src/lib/lossSeries'

describe('the loss curve of a training run', () => {
  it('merges epochs as they arrive, one per epoch, the newest report winning', () => {
    let h = mergeHistory([], [{ epoch: 1, loss: 0.9 }])
    h = mergeHistory(h, [{ epoch: 1, loss: 0.9 }, { epoch: 2, loss: 0.7 }])
    h = mergeHistory(h, [{ epoch: 3, loss: 0.5, val_loss: 0.6 }, { epoch: 2, loss: 0.71 }])
    expect(h.map((e) => [e.epoch, e.loss])).toEqual([[1, 0.9], [2, 0.71], [3, 0.5]])
  })

  it('drops what is not an epoch', () => {
    expect(mergeHistory([], [null, 3, { epoch: 1 }, { epoch: 2, loss: NaN }, { epoch: 4, loss: 1 }])).toEqual([{ epoch: 4, loss: 1 }])
  })

  it('draws loss and val_loss with gaps where a curve has no value', () => {
    const s = lossSeries([{ epoch: 1, loss: 1 }, { epoch: 2, loss: 0.5, val_loss: 0.8 }])
    expect(s.epochs).toEqual([1, 2])
    expect(s.series).toEqual([{ label: 'loss', data: [1, 0.5] }, { label: 'val_loss', data: [null, 0.8] }])
    expect(lossSeries([]).series).toEqual([])
  })
})
