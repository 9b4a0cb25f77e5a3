import { describe, expect, it } from 'vitest';
import { hunks, lineDiff } from '../../console/src/diff.js';

const render = (oldText: string, newText: string): string[] =>
  lineDiff(oldText, newText).map((l) => `${l.kind === 'add' ? '+' : l.kind === 'del' ? '-' : ' '}${l.text}`);

describe('console line diff', () => {
  it('keeps common lines and marks changed ones', () => {
    expect(render('a\nb\nc', 'a\nB\nc')).toEqual([' a', '-b', '+B', ' c']);
    expect(render('a\nb', 'a\nb')).toEqual([' a', ' b']);
    expect(render('', 'x')).toEqual(['-', '+x']);
  });

  it('finds the longest common subsequence, not just the common ends', () => {
    expect(render('x\na\nb\nc\ny', 'a\nz\nb\nc')).toEqual(['-x', ' a', '+z', ' b', ' c', '-y']);
  });

  it('numbers lines in both texts', () => {
    const d = lineDiff('a\nb\nc', 'a\nc\nd');
    expect(d.map((l) => [l.kind, l.oldNo, l.newNo])).toEqual([
      ['same', 1, 1],
      ['del', 2, null],
      ['same', 3, 2],
      ['add', null, 3],
    ]);
  });

  it('shows changes with context and folds the rest', () => {
    const old = Array.from({ length: 20 }, (_, i) => `line ${i}`).join('\n');
    const next = old.replace('line 10', 'line ten');
    const h = hunks(lineDiff(old, next), 2);
    expect(h[0]).toEqual({ kind: 'gap', skipped: 8 });
    expect(h.slice(1, -1).map((l) => ('text' in l ? l.text : ''))).toEqual(['line 8', 'line 9', 'line 10', 'line ten', 'line 11', 'line 12']);
    expect(h[h.length - 1]).toEqual({ kind: 'gap', skipped: 7 });
    expect(hunks(lineDiff(old, old))).toEqual([]);
  });
});
