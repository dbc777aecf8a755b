// Levels by the compiler's rule: a root (no parents) is level 0, every other sequence is one
// more than its deepest parent (the longest path from a root). A given `level` may put a
// sequence deeper than that (it then also waits for every lower level, e.g. two roots at
// levels 1 and 2 run in that order), never above its parents. Pure: no DOM, no React.

import type { SequenceSpec } from './spec';

export interface LevelIssue {
  path: string;
  message: string;
}

export interface Levels {
  /** Level by sequence tag (every sequence gets one, even in a broken graph). */
  level: Map<string, number>;
  /** Sequences on a parent cycle. */
  cyclic: Set<string>;
  issues: LevelIssue[];
  /** The deepest level + 1 (0 for an empty workflow). */
  depth: number;
}

export function computeLevels(sequences: readonly SequenceSpec[]): Levels {
  const byTag = new Map<string, SequenceSpec>();
  const indexOf = new Map<string, number>();
  sequences.forEach((seq, i) => {
    if (!byTag.has(seq.tag)) {
      byTag.set(seq.tag, seq);
      indexOf.set(seq.tag, i);
    }
  });
  const level = new Map<string, number>();
  const floor = new Map<string, number>(); // the level its parents alone give
  const state = new Map<string, 'visiting' | 'done'>();
  const cyclic = new Set<string>();
  const issues: LevelIssue[] = [];

  // Iterative DFS (a 500-deep chain must not overflow the stack).
  const visit = (start: string): void => {
    const stack: { tag: string; next: number }[] = [{ tag: start, next: 0 }];
    state.set(start, 'visiting');
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const parents = byTag.get(frame.tag)?.parents ?? [];
      if (frame.next < parents.length) {
        const parent = parents[frame.next]!;
        frame.next += 1;
        if (!byTag.has(parent)) continue;
        const s = state.get(parent);
        if (s === 'visiting') {
          // A back edge: everything on the stack from `parent` up is on the cycle.
          let onCycle = false;
          for (const f of stack) {
            if (f.tag === parent) onCycle = true;
            if (onCycle) cyclic.add(f.tag);
          }
          continue;
        }
        if (s === undefined) {
          state.set(parent, 'visiting');
          stack.push({ tag: parent, next: 0 });
        }
        continue;
      }
      let value = 0;
      for (const parent of parents) {
        const pl = level.get(parent);
        if (pl !== undefined && state.get(parent) === 'done') value = Math.max(value, pl + 1);
      }
      floor.set(frame.tag, value);
      const given = byTag.get(frame.tag)?.level;
      level.set(frame.tag, typeof given === 'number' && given > value ? given : value);
      state.set(frame.tag, 'done');
      stack.pop();
    }
  };

  for (const seq of sequences) if (!state.has(seq.tag)) visit(seq.tag);

  sequences.forEach((seq, i) => {
    seq.parents.forEach((parent, j) => {
      if (parent === seq.tag) {
        issues.push({ path: `sequences[${i}].parents[${j}]`, message: 'a sequence cannot be its own parent' });
      } else if (!byTag.has(parent)) {
        issues.push({ path: `sequences[${i}].parents[${j}]`, message: `unknown sequence '${parent}'` });
      }
    });
    if (cyclic.has(seq.tag)) {
      issues.push({ path: `sequences[${i}].parents`, message: 'parents form a cycle' });
    }
    const given = seq.level;
    const lowest = floor.get(seq.tag);
    if (given !== undefined && given !== null && lowest !== undefined && given < lowest) {
      issues.push({
        path: `sequences[${i}].level`,
        message: `level ${given} is above its parents: at least ${lowest}`,
      });
    }
  });

  let depth = 0;
  for (const l of level.values()) depth = Math.max(depth, l + 1);
  return { level, cyclic, issues, depth };
}

/**
 * Sequences grouped by level, each column ordered to keep edges short: by the mean rank of
 * the parents in earlier columns (barycenter), ties in spec order.
 */
export function levelColumns(sequences: readonly SequenceSpec[], levels: Levels): string[][] {
  const columns: string[][] = Array.from({ length: levels.depth }, () => []);
  const specIndex = new Map<string, number>();
  sequences.forEach((seq, i) => {
    if (!specIndex.has(seq.tag)) specIndex.set(seq.tag, i);
  });
  const rank = new Map<string, number>();
  const byLevel: SequenceSpec[][] = Array.from({ length: levels.depth }, () => []);
  const seen = new Set<string>();
  for (const seq of sequences) {
    if (seen.has(seq.tag)) continue;
    seen.add(seq.tag);
    byLevel[levels.level.get(seq.tag) ?? 0]!.push(seq);
  }
  byLevel.forEach((members, l) => {
    const keyed = members.map((seq) => {
      const ranks = seq.parents.map((p) => rank.get(p)).filter((r): r is number => r !== undefined);
      const bary = ranks.length ? ranks.reduce((a, b) => a + b, 0) / ranks.length : Number.NaN;
      return { seq, bary, index: specIndex.get(seq.tag) ?? 0 };
    });
    // Roots keep spec order; children follow their parents.
    keyed.sort((a, b) => {
      const ab = Number.isNaN(a.bary) ? a.index : a.bary;
      const bb = Number.isNaN(b.bary) ? b.index : b.bary;
      return ab - bb || a.index - b.index;
    });
    keyed.forEach(({ seq }, r) => {
      rank.set(seq.tag, r);
      columns[l]!.push(seq.tag);
    });
  });
  return columns;
}
