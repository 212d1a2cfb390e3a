import { afterEach, expect } from 'vitest';
import { illegalMoves } from './setup';

// Every client made by makeClient() must move only along the transition table of src/state.ts.
afterEach(() => {
  expect(illegalMoves.splice(0), 'state changes outside the transition table').toEqual([]);
});
