import { createContext, useContext } from 'react';

import type { ComponentInfo } from '../lib/catalog';

/** The product's components (for the palette, app pickers and $Variable completion). */
export const CatalogContext = createContext<ComponentInfo[]>([]);

export function useComponents(): ComponentInfo[] {
  return useContext(CatalogContext);
}
