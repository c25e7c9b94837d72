// Generates src/openapi.ts from the API's OpenAPI document (proto-docs/openapi.json, itself
// generated from the Rust code). With --check, fails when the checked-in file is stale instead.
import { readFile, writeFile } from "node:fs/promises";
import openapiTS, { astToString } from "openapi-typescript";

const source = new URL("../../../proto-docs/openapi.json", import.meta.url);
const target = new URL("../src/openapi.ts", import.meta.url);
const header =
  "// Generated from proto-docs/openapi.json by `npm run generate`. Do not edit by hand.\n\n";

const document = JSON.parse(await readFile(source, "utf8"));
const generated = header + astToString(await openapiTS(document, { exportType: false }));

if (process.argv.includes("--check")) {
  const current = await readFile(target, "utf8").catch(() => "");
  if (current !== generated) {
    console.error(
      "src/openapi.ts is stale: run `npm run generate` in clients/typescript (after `make openapi`).",
    );
    process.exit(1);
  }
} else {
  await writeFile(target, generated);
}
