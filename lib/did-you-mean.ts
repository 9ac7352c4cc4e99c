// "Did you mean …?": the nearest known name to a mistyped one, for config fields, task ids, commands and flags.

/** The nearest of `names` to `word` by edit distance, when near enough to be a likely typo. */
export function didYouMean(word: string, names: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = editDistance(word, n);
    if (d < bestD) { bestD = d; best = n; }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function hintNames(word: string, names: Iterable<string>): string {
  const all = [...names];
  const guess = didYouMean(word, all);
  return guess ? `did you mean '${guess}'?` : `known: ${all.join(', ')}`;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}
