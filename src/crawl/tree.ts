/**
 * Walking a parsed document (domhandler nodes) without recursion and without copying child lists,
 * shared by the extraction walk (./extract.ts) and the text walks (./page-text.ts).
 */

/** The parts of a domhandler node the walks read. */
export interface DomNode {
  type: string;
  name?: string;
  data?: string;
  attribs?: Record<string, string>;
  children?: DomNode[];
}

/** What {@link TreeCursor.next} returns when the children of the current element are done. */
export const LEFT: unique symbol = Symbol('left');

/**
 * Depth-first traversal in document order: a stack of open elements with the index of the next
 * child to visit in each, so an element with a million children costs no more up front than one
 * with two, and nesting depth costs no call stack. Each open element carries a frame of the
 * caller's (`F`), handed back when its children are done.
 */
export class TreeCursor<F> {
  private readonly parents: DomNode[];
  private readonly indexes: number[];
  private readonly frames: F[];
  /** The frame of the element whose children were just done (after `next()` returned {@link LEFT}). */
  left: F | undefined;

  /** Visits `root` itself first, as the only child of a stand-in root with `rootFrame`. */
  constructor(root: DomNode, rootFrame: F) {
    this.parents = [{ type: 'root', children: [root] }];
    this.indexes = [0];
    this.frames = [rootFrame];
  }

  /** The frame of the element whose children are being visited. */
  get frame(): F {
    return this.frames[this.frames.length - 1]!;
  }

  /** How many elements are open: the depth of the node `next()` returns next (`root` is at 1). */
  get depth(): number {
    return this.parents.length;
  }

  /** The next node, {@link LEFT} when the current element's children are done, or null at the end. */
  next(): DomNode | typeof LEFT | null {
    const top = this.parents.length - 1;
    if (top < 0) return null;
    const children = this.parents[top]!.children!;
    const index = this.indexes[top]!;
    if (index >= children.length) {
      this.parents.pop();
      this.indexes.pop();
      this.left = this.frames.pop();
      return LEFT;
    }
    this.indexes[top] = index + 1;
    return children[index]!;
  }

  /** Visits the children of `node` (the node `next()` just returned) next, with `frame`. */
  descend(node: DomNode, frame: F): void {
    this.parents.push(node);
    this.indexes.push(0);
    this.frames.push(frame);
  }
}
