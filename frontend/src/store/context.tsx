import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import { useShallow } from 'zustand/react/shallow';

import type { EditorState, EditorStore } from './editor';

export const EditorContext = createContext<EditorStore | null>(null);

export function useEditorStore(): EditorStore {
  const store = useContext(EditorContext);
  if (!store) throw new Error('useEditor outside an EditorContext');
  return store;
}

/** Subscribe to a slice of the canvas store (re-render only when it changes). */
export function useEditor<T>(selector: (s: EditorState) => T): T {
  return useStore(useEditorStore(), selector);
}

/** As useEditor, for selectors that build an object or array (shallow compare). */
export function useEditorShallow<T>(selector: (s: EditorState) => T): T {
  return useStore(useEditorStore(), useShallow(selector));
}
