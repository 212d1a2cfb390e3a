import { describe, expect, it } from 'vitest';
import { DedupWindow } from '../../src/dedup-window';

describe('DedupWindow', () => {
  it('reports a key seen within ttlMs, and forgets it at ttlMs', () => {
    const w = new DedupWindow(1000, 10);
    expect(w.checkAndAdd('a', 0)).toBe(false);
    expect(w.checkAndAdd('a', 999)).toBe(true);
    expect(w.checkAndAdd('a', 1000)).toBe(false);
    expect(w.checkAndAdd('a', 1999)).toBe(true);
    expect(w.size).toBe(1);
  });

  it('keeps the newest max keys through many evictions and queue compactions', () => {
    const w = new DedupWindow(1e9, 100);
    for (let i = 0; i < 50_000; i++) expect(w.checkAndAdd(`k${i}`, i)).toBe(false);
    expect(w.size).toBe(100);
    for (let i = 49_900; i < 50_000; i++) expect(w.checkAndAdd(`k${i}`, 50_000)).toBe(true);
    expect(w.checkAndAdd('k49899', 50_000)).toBe(false);
    expect(w.size).toBe(100);
  });

  it('expires in arrival order, a re-added key living from its new time', () => {
    const w = new DedupWindow(100, 1000);
    w.checkAndAdd('a', 0);
    w.checkAndAdd('b', 50);
    expect(w.checkAndAdd('a', 100)).toBe(false);
    expect(w.checkAndAdd('b', 149)).toBe(true);
    expect(w.checkAndAdd('b', 150)).toBe(false);
    expect(w.checkAndAdd('a', 199)).toBe(true);
    w.clear();
    expect(w.size).toBe(0);
    expect(w.checkAndAdd('a', 200)).toBe(false);
  });
});
