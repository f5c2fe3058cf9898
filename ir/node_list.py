"""``NodeList``: a graph's nodes in order, with O(1) insertion and removal anywhere.

A doubly linked list of boxes, one per element, and a dict from each element's ``id`` to its
box (as onnx-ir's ``DoublyLinkedSet``), so ``insert_before``, ``insert_after``, ``remove``
and ``in`` cost O(1) however long the list is, where a Python list pays O(n) for each.
Reading is a ``Sequence``: iteration in order (and ``reversed``), ``len``; indexing walks
from the nearer end, so it is O(n) and meant for tests and one-off reads.

Iterating while the list changes is safe: a removed box keeps its links, so an iterator
standing on it walks on to what followed it; elements inserted ahead of an iterator are
visited, elements inserted behind it are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class _Box(Generic[T]):
    """One element's place in the list; ``erased`` once the element is removed."""

    __slots__ = ("erased", "item", "next", "prev")

    def __init__(self, item: T | None) -> None:
        self.item = item
        self.erased = False
        self.prev: _Box[T] = self
        self.next: _Box[T] = self


class NodeList(Sequence[T]):
    """An ordered set of objects (a graph's nodes), compared by identity.

    Raises (from the editing methods):
        ValueError: the element is already in the list, or the anchor is not.
    """

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._root: _Box[T] = _Box(None)  # the sentinel: root.next is the first element
        self._boxes: dict[int, _Box[T]] = {}
        for item in items:
            self.append(item)

    # ------------------------------------------------------------ editing

    def append(self, item: T) -> None:
        """Add ``item`` at the end."""
        self._link(item, self._root.prev)

    def insert_before(self, anchor: T, item: T) -> None:
        """Add ``item`` just before ``anchor``."""
        self._link(item, self._box(anchor).prev)

    def insert_after(self, anchor: T, item: T) -> None:
        """Add ``item`` just after ``anchor``."""
        self._link(item, self._box(anchor))

    def remove(self, item: T) -> None:
        """Take ``item`` out; its box keeps its links for iterators standing on it."""
        box = self._box(item)
        box.prev.next = box.next
        box.next.prev = box.prev
        box.erased = True
        del self._boxes[id(item)]

    def _link(self, item: T, after: _Box[T]) -> None:
        if id(item) in self._boxes:
            raise ValueError(f"{item!r} is already in the list")
        box = _Box(item)
        box.prev, box.next = after, after.next
        after.next.prev = box
        after.next = box
        self._boxes[id(item)] = box

    def _box(self, item: T) -> _Box[T]:
        box = self._boxes.get(id(item))
        if box is None:
            raise ValueError(f"{item!r} is not in the list")
        return box

    # ------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._boxes)

    def __contains__(self, item: object) -> bool:
        return id(item) in self._boxes

    def __iter__(self) -> Iterator[T]:
        box = self._root.next
        while box is not self._root:
            if not box.erased:
                yield box.item  # type: ignore[misc]  # only the sentinel holds None
            box = box.next

    def __reversed__(self) -> Iterator[T]:
        box = self._root.prev
        while box is not self._root:
            if not box.erased:
                yield box.item  # type: ignore[misc]
            box = box.prev

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        """The element at ``index`` (walked to, O(n)), or a list for a slice."""
        if isinstance(index, slice):
            return list(self)[index]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"node index {index} out of range for {n} nodes")
        index %= n
        if index < n // 2:
            items = iter(self)
        else:
            items, index = reversed(self), n - 1 - index
        for _ in range(index):
            next(items)
        return next(items)

    def __reduce__(self) -> tuple[type[NodeList[T]], tuple[list[T]]]:
        # Copies and pickles rebuild the boxes: the id keys would not survive.
        return (type(self), (list(self),))

    def __repr__(self) -> str:
        return f"NodeList({list(self)!r})"
