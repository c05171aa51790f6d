// Validate a C2PA manifest store with @trustnxt/c2pa-ts, an independent TypeScript reader (no
// network). Usage: node c2pa_ts_check.mjs ASSET [STORE]
// ASSET: a signed JPEG or PNG; STORE: a manifest store (application/c2pa) to validate against
// ASSET instead of the one embedded in it. Prints one JSON object.
import * as fs from 'node:fs/promises';
import { JPEG, PNG } from '@trustnxt/c2pa-ts/asset';
import { SuperBox } from '@trustnxt/c2pa-ts/jumbf';
import { ManifestStore, ValidationResult } from '@trustnxt/c2pa-ts/manifest';

const buf = await fs.readFile(process.argv[2]);
const asset = JPEG.canRead(buf) ? new JPEG(buf) : PNG.canRead(buf) ? new PNG(buf) : null;
if (!asset) {
  console.log(JSON.stringify({ error: 'not a JPEG or PNG' }));
  process.exit(2);
}
const embedded = asset.getManifestJUMBF();
const jumbf = process.argv[3] ? new Uint8Array(await fs.readFile(process.argv[3])) : embedded;
let result;
let manifest;
try {
  const store = ManifestStore.read(SuperBox.fromBuffer(jumbf));
  manifest = store.getActiveManifest();
  result = await store.validate(asset);
} catch (e) {
  result = ValidationResult.fromError(e);
}
console.log(JSON.stringify({
  isValid: result.isValid,
  codes: result.statusEntries.filter((e) => !e.success).map((e) => e.code),
  label: manifest?.label ?? null,
  assertions: manifest?.assertions?.assertions?.map((a) => a.label) ?? [],
  sameAsEmbedded: embedded ? Buffer.from(embedded).equals(Buffer.from(jumbf)) : false,
}));
