/**
 * Tag routing (Dubbo's tag router, Kitex's tag-based routing) inside a
 * priority tier: the tier's usable endpoints form one tier per tag (an
 * endpoint's registration `metadata.tag`, '' when it has none), each with its
 * own scheduler, kept up to date one endpoint at a time as zones are. A call's
 * tag is the value of the `tagRouting.header` in its metadata; the leaf it
 * goes to (`forCall`):
 * - tagged T: the endpoints tagged T while one is usable; else with
 *   `force: false` the untagged ones, with `force: true` none (the call fails
 *   UNAVAILABLE naming T);
 * - untagged: the untagged endpoints; when none is usable, any (the tag with
 *   the most usable endpoints), so a call without a tag never fails for it.
 * A pick costs one `Map` lookup.
 */

/** What a split needs of a tag's tier (`Tier` is one). */
export interface TagLeaf {
  /** Usable endpoints in it. */
  readonly size: number;
  /** Index of the split's tier in the active list, or -1; kept equal to the split's. */
  rank: number;
}

/** How calls and endpoints are matched (the policy's `tagRouting`). */
export interface TagRoutingConfig {
  /** Call-metadata key carrying the call's tag. */
  readonly header: string;
  /** No usable endpoint with the call's tag: fail the call (true) or use the untagged ones (false). */
  readonly force: boolean;
}

export class TagSplit<L extends TagLeaf> {
  /** Usable endpoints over all tags. */
  size = 0;
  private readonly byTag = new Map<string, L>();
  private rank = -1;
  private largest: L | undefined;

  /** `createLeaf(tag)` makes an empty tier for a tag of the priority tier. */
  constructor(private readonly createLeaf: (tag: string) => L) {}

  /** The tag's tier (made on first use; kept, empty, when its endpoints go: tags are few). */
  leafFor(tag: string): L {
    let leaf = this.byTag.get(tag);
    if (leaf === undefined) {
      leaf = this.createLeaf(tag);
      leaf.rank = this.rank;
      this.byTag.set(tag, leaf);
    }
    return leaf;
  }

  /** An endpoint joined (+1) or left (-1) one of the tag tiers. */
  changed(delta: number): void {
    this.size += delta;
    this.largest = undefined;
  }

  /** The split's tier got index `rank` in the active list (-1: none); its tags' tiers follow. */
  setRank(rank: number, each: (leaf: L, rank: number) => void): void {
    this.rank = rank;
    for (const leaf of this.byTag.values()) each(leaf, rank);
  }

  /** The tier a call tagged `tag` ('' = none) goes to; undefined when it must fail (see the rules above). */
  forCall(tag: string, force: boolean): L | undefined {
    if (tag !== '') {
      const tagged = this.byTag.get(tag);
      if (tagged !== undefined && tagged.size > 0) return tagged;
      if (force) return undefined;
    }
    const untagged = this.byTag.get('');
    if (untagged !== undefined && untagged.size > 0) return untagged;
    return tag === '' ? this.largestLeaf() : undefined;
  }

  /** Each tag ('' = untagged) whose tier has usable endpoints, with that tier (diagnostics). */
  forEachUsable(each: (tag: string, leaf: L) => void): void {
    for (const [tag, leaf] of this.byTag) if (leaf.size > 0) each(tag, leaf);
  }

  /** Usable endpoints per tag (diagnostics, tests). */
  sizes(): Map<string, number> {
    const result = new Map<string, number>();
    for (const [tag, leaf] of this.byTag) if (leaf.size > 0) result.set(tag, leaf.size);
    return result;
  }

  /** The tag tier with the most usable endpoints (recomputed, O(tags), after a change). */
  private largestLeaf(): L | undefined {
    if (this.largest === undefined || this.largest.size === 0) {
      this.largest = undefined;
      for (const leaf of this.byTag.values()) if (leaf.size > 0 && (this.largest === undefined || leaf.size > this.largest.size)) this.largest = leaf;
    }
    return this.largest;
  }
}
