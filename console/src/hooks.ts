// Data loading: one async value, or one page of a list with Next/Previous through iterators.
import type { ListResponse } from "octohooks";
import { type DependencyList, useCallback, useEffect, useRef, useState } from "react";

export type AsyncState<T> =
  | { status: "loading"; value?: undefined; error?: undefined }
  | { status: "error"; value?: undefined; error: unknown }
  | { status: "ready"; value: T; error?: undefined };

export function useAsync<T>(
  load: () => Promise<T>,
  deps: DependencyList,
): AsyncState<T> & { reload: () => void; setValue: (value: T) => void } {
  const [state, setState] = useState<AsyncState<T>>({ status: "loading" });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  // The caller's deps decide reloads.
  useEffect(() => {
    let live = true;
    setState((s) => (s.status === "ready" && tick > 0 ? s : { status: "loading" }));
    loadRef.current().then(
      (value) => live && setState({ status: "ready", value }),
      (error: unknown) => live && setState({ status: "error", error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const setValue = useCallback((value: T) => setState({ status: "ready", value }), []);
  return { ...state, reload, setValue };
}

export interface Paged<T> {
  status: "loading" | "error" | "ready";
  items: T[];
  error: unknown;
  page: number;
  hasNext: boolean;
  hasPrevious: boolean;
  next: () => void;
  previous: () => void;
  /** Reloads the current page (quietly: the old rows stay until the new ones come). */
  reload: () => void;
  /** Back to the first page. */
  reset: () => void;
}

export function usePaged<T>(
  fetchPage: (iterator: string | null) => Promise<ListResponse<T>>,
  deps: DependencyList,
): Paged<T> {
  // cursors[i] is the iterator that fetches page i (null for the first page).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [index, setIndex] = useState(0);
  const [tick, setTick] = useState(0);
  const [state, setState] = useState<{
    status: "loading" | "error" | "ready";
    items: T[];
    error: unknown;
    nextIterator: string | null;
  }>({ status: "loading", items: [], error: null, nextIterator: null });
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const quiet = useRef(false);

  // New deps: back to the first page.
  useEffect(() => {
    setCursors([null]);
    setIndex(0);
    quiet.current = false;
    setTick((t) => t + 1);
    // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps reset the list
  }, deps);

  // biome-ignore lint/correctness/useExhaustiveDependencies: tick drives the loading
  useEffect(() => {
    if (tick === 0) return;
    let live = true;
    const iterator = cursors[index] ?? null;
    if (!quiet.current) setState((s) => ({ ...s, status: "loading", error: null }));
    quiet.current = false;
    fetchRef.current(iterator).then(
      (page) => {
        if (!live) return;
        setState({
          status: "ready",
          items: page.data,
          error: null,
          nextIterator: page.done ? null : page.iterator,
        });
      },
      (error: unknown) => {
        if (!live) return;
        setState({ status: "error", items: [], error, nextIterator: null });
      },
    );
    return () => {
      live = false;
    };
  }, [tick]);

  const next = useCallback(() => {
    if (state.nextIterator === null) return;
    const iterator = state.nextIterator;
    setCursors((c) => [...c.slice(0, index + 1), iterator]);
    setIndex((i) => i + 1);
    setTick((t) => t + 1);
  }, [state.nextIterator, index]);

  const previous = useCallback(() => {
    if (index === 0) return;
    setIndex((i) => i - 1);
    setTick((t) => t + 1);
  }, [index]);

  const reload = useCallback(() => {
    quiet.current = true;
    setTick((t) => t + 1);
  }, []);

  const reset = useCallback(() => {
    setCursors([null]);
    setIndex(0);
    setTick((t) => t + 1);
  }, []);

  return {
    status: state.status,
    items: state.items,
    error: state.error,
    page: index + 1,
    hasNext: state.status === "ready" && state.nextIterator !== null,
    hasPrevious: index > 0,
    next,
    previous,
    reload,
    reset,
  };
}
