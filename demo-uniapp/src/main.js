import { createSSRApp } from 'vue';
import App from './App.vue';

/** uni-app's entry: returns the application instance for every platform it compiles to. */
export function createApp() {
  const app = createSSRApp(App);
  return { app };
}
