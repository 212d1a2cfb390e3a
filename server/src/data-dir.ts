import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The data directory cannot hold the offline store; the message names the directory. */
export class DataDirError extends Error {
  /** The absolute path of the directory (or file) that is not usable. */
  readonly path: string;

  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(`data directory "${path}" is not usable: ${problem}`, options);
    this.name = 'DataDirError';
    this.path = path;
  }
}

/** Which file a path pointed to: a deleted and re-created file has another identity. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/**
 * Makes sure `dir` exists (creating it and its parents), is a directory, and this process can create
 * files in it; returns the absolute path of the database file inside. Throws a {@link DataDirError} that
 * names the path, instead of SQLite's "unable to open database file" that names nothing.
 */
export function prepareDataDir(dir: string, fileName: string): string {
  const abs = resolve(dir);
  let existing;
  try {
    existing = statSync(abs, { throwIfNoEntry: false });
  } catch (err) {
    throw new DataDirError(abs, describe(err, 'it cannot be read'), { cause: err });
  }
  if (existing && !existing.isDirectory()) throw new DataDirError(abs, 'it is a file, not a directory');
  try {
    mkdirSync(abs, { recursive: true });
  } catch (err) {
    throw new DataDirError(abs, describe(err, 'it cannot be created'), { cause: err });
  }
  try {
    accessSync(abs, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new DataDirError(abs, describe(err, 'it is not writable by this process'), { cause: err });
  }
  const file = join(abs, fileName);
  const fileStat = statSync(file, { throwIfNoEntry: false });
  if (fileStat && !fileStat.isFile()) throw new DataDirError(abs, `"${fileName}" in it is not a regular file`);
  return file;
}

/** Wraps an error from opening the database so that it names the data directory. */
export function dataDirOpenError(file: string, err: unknown): DataDirError {
  return new DataDirError(resolve(file, '..'), `the database "${file}" cannot be opened: ${(err as Error).message}`, { cause: err });
}

/** The identity of the file at `path`, or null when nothing is there. */
export function fileIdentity(path: string): FileIdentity | null {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Whether two identities name the same file. */
export function sameFile(a: FileIdentity | null, b: FileIdentity | null): boolean {
  return !!a && !!b && a.dev === b.dev && a.ino === b.ino;
}

function describe(err: unknown, fallback: string): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR' || code === 'EEXIST') return 'a file is in the way of it (a parent is not a directory)';
  if (code === 'EROFS') return 'the file system is read-only';
  if (code === 'ENOSPC') return 'no space left on the device';
  return code ? `${fallback} (${code})` : fallback;
}
