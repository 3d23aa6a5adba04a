// Validates HDF files with inspecjs (the parser Heimdall and the SAF CLI use)
// and prints, per file, either the conversion error or every control's
// status and severity as inspecjs computes them.
// usage: INSPECJS=/path/to/node_modules/inspecjs node hdf-oracle.js FILE...
'use strict';
const fs = require('fs');
const inspecjs = require(process.env.INSPECJS);
const out = {};
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, 'utf8');
  try {
    inspecjs.ExecJSON.Convert.toExecJSON(text);
  } catch (e) {
    out[file] = { error: String((e && e.message) || e) };
    continue;
  }
  const ev = inspecjs.convertFileContextual(text);
  const profile = ev.contains[0];
  out[file] = {
    controls: profile.contains.map((c) => ({
      id: c.data.id,
      status: c.hdf.status,
      severity: c.hdf.severity,
    })),
  };
}
process.stdout.write(JSON.stringify(out));
