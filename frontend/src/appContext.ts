import { createContext, useContext } from 'react';

import { Api } from './api';
import type { Bootstrap } from './bootstrap';

export interface AppContextValue {
  boot: Bootstrap;
  api: Api;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const v = useContext(AppContext);
  if (!v) throw new Error('useApp outside AppContext');
  return v;
}

export function useBootstrap(): Bootstrap {
  return useApp().boot;
}

export function useApi(): Api {
  return useApp().api;
}
