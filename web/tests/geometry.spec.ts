import { describe, expect, it } from 'vitest'
import * as g from '../src/lib/geometry'

const square: g.Ring = g.rectangleRing(0, 0, 10, 10)

describe('annotation geometry', () => {
  it('reads GeoJSON rings without their closing point and writes them closed', () => {
    const geometry = g.polygonGeometry(square)
    expect(geometry.coordinates[0]).toEqual([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]])
    const [shape] = g.shapesOf(geometry)
    expect(shape).toEqual({ kind: 'polygon', rings: [square] })
  })

  it('draws an imported multipolygon as polygons, not as its bounding box', () => {
    const multi = { type: 'MultiPolygon', coordinates: [[[[0, 0], [4, 0], [0, 4], [0, 0]]], [[[10, 10], [14, 10], [10, 14], [10, 10]]]] }
    const shapes = g.shapesOf(multi)
    expect(shapes.map((s) => s.kind)).toEqual(['polygon', 'polygon'])
    expect(g.svgPath((shapes[1] as { rings: g.Ring[] }).rings)).toBe('M10,10L14,10L10,14Z')
  })

  it('tells inside from outside, holes excluded', () => {
    const hole = g.rectangleRing(4, 4, 2, 2)
    expect(g.insidePolygon({ x: 2, y: 2 }, [square, hole])).toBe(true)
    expect(g.insidePolygon({ x: 5, y: 5 }, [square, hole])).toBe(false)
    expect(g.insidePolygon({ x: 11, y: 5 }, [square])).toBe(false)
    const triangle = [{ x: 0, y: 0 }, { x: 10, y: 0 }, { x: 0, y: 10 }]
    expect(g.insideRing({ x: 2, y: 2 }, triangle)).toBe(true)
    expect(g.insideRing({ x: 8, y: 8 }, triangle)).toBe(false)
  })

  it('picks the smallest polygon under a click, and a point near it first', () => {
    const items = [
      { id: 'big', shapes: g.shapesOf(g.polygonGeometry(g.rectangleRing(0, 0, 100, 100))) },
      { id: 'small', shapes: g.shapesOf(g.polygonGeometry(g.rectangleRing(10, 10, 10, 10))) },
      { id: 'dot', shapes: g.shapesOf({ type: 'Point', coordinates: [50, 50] }) },
    ]
    expect(g.featureAt(items, { x: 15, y: 15 }, 2)).toBe('small')
    expect(g.featureAt(items, { x: 60, y: 60 }, 2)).toBe('big')
    expect(g.featureAt(items, { x: 51, y: 50 }, 2)).toBe('dot')
    expect(g.featureAt(items, { x: 200, y: 200 }, 2)).toBeNull()
  })

  it('finds the vertex and the edge near a point', () => {
    expect(g.vertexAt(square, { x: 9, y: 1 }, 2)).toBe(1)
    expect(g.vertexAt(square, { x: 5, y: 5 }, 2)).toBe(-1)
    expect(g.edgeAt(square, { x: 5, y: 9.5 }, 1)).toBe(2)
    expect(g.edgeAt(square, { x: 0.5, y: 5 }, 1)).toBe(3) // the closing edge
  })

  it('inserts a vertex on an edge, after its first end', () => {
    const [mid] = g.midpoints(square)
    expect(mid).toEqual({ x: 5, y: 0 })
    const ring = g.insertVertex(square, 0, mid)
    expect(ring).toHaveLength(5)
    expect(ring[1]).toEqual({ x: 5, y: 0 })
    expect(g.area(ring)).toBe(g.area(square))
  })

  it('deletes a vertex but keeps a polygon at three', () => {
    const triangle = g.deleteVertex(square, 2)
    expect(triangle).toEqual([{ x: 0, y: 0 }, { x: 10, y: 0 }, { x: 0, y: 10 }])
    expect(g.deleteVertex(triangle!, 0)).toBeNull()
  })

  it('moves a vertex; a rectangle stays a rectangle', () => {
    expect(g.moveVertex(square, 2, { x: 20, y: 15 })[2]).toEqual({ x: 20, y: 15 })
    expect(g.moveVertex(square, 2, { x: 20, y: 15 }, true)).toEqual(g.rectangleRing(0, 0, 20, 15))
    // dragging a corner past the opposite one flips the rectangle, it does not fold
    expect(g.moveVertex(square, 2, { x: -5, y: -5 }, true)).toEqual(g.rectangleRing(-5, -5, 5, 5))
  })

  it('moves a whole shape but not off the image', () => {
    const [moved] = g.translate([square], 5, 3, 100, 100)
    expect(moved[0]).toEqual({ x: 5, y: 3 })
    const [stopped] = g.translate([square], -50, 500, 100, 100)
    expect(stopped[0]).toEqual({ x: 0, y: 90 })
  })

  it('closes a drawn polygon only with three vertices and some area', () => {
    expect(g.closable(square.slice(0, 3))).toBe(true)
    expect(g.closable(square.slice(0, 2))).toBe(false)
    expect(g.closable([{ x: 0, y: 0 }, { x: 5, y: 5 }, { x: 10, y: 10 }])).toBe(false)
  })

  it('maps image and screen pixels both ways', () => {
    const view = { x: 100, y: 50, scale: 0.5 }
    const p = { x: 400, y: 300 }
    expect(g.toScreen(p, view)).toEqual({ x: 300, y: 200 })
    expect(g.toImage(g.toScreen(p, view), view)).toEqual(p)
    expect(g.svgTransform(view)).toBe('translate(100 50) scale(0.5)')
  })

  it('asks for the part of the image in view, with a margin, clipped to the image', () => {
    // 800x600 screen showing the image at half size from its top-left corner
    const r = g.visibleRegion({ x: 0, y: 0, scale: 0.5 }, 800, 600, 1000, 5000, 0.25)
    expect(r).toEqual({ x: 0, y: 0, w: 1000, h: 1500 })
    const zoomed = g.visibleRegion({ x: -2000, y: -1000, scale: 2 }, 800, 600, 10000, 10000, 0)
    expect(zoomed).toEqual({ x: 1000, y: 500, w: 400, h: 300 })
  })

  it('rounds and clamps a point to the image', () => {
    expect(g.clampPoint({ x: -3.2, y: 10.6 }, 100, 100)).toEqual({ x: 0, y: 11 })
    expect(g.clampPoint({ x: 300, y: 50 }, 100, 100)).toEqual({ x: 100, y: 50 })
  })
})
