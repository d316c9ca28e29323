// deploy_k8s_schema.js -- strict schema check of the Kubernetes manifests
// against the API types of the official JavaScript client
// (@kubernetes/client-node, generated from Kubernetes' OpenAPI document).
//
// Usage: node deploy_k8s_schema.js MODULE_DIR DOCS.json
// DOCS.json is deploy_k8s.py --dump-json's list of {file, doc}. Every field
// of every object must exist in its API type (as `kubectl apply
// --validate=strict` demands) and scalars must have the type's JSON type.
// Kinds the client does not know (the ServiceMonitor CRD, kustomize's
// Kustomization) are listed as skipped. Prints TAP, one line per document.
"use strict";
const path = require("path");
const fs = require("fs");

const models = require(path.join(process.argv[2], "@kubernetes/client-node/dist/gen/model/models"));
const docs = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));

function walk(v, type, where, errs) {
	if (v === null || v === undefined)
		return;
	let m = /^Array<(.+)>$/.exec(type);
	if (m) {
		if (!Array.isArray(v))
			errs.push(`${where}: a list expected`);
		else
			v.forEach((x, i) => walk(x, m[1], `${where}[${i}]`, errs));
		return;
	}
	m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
	if (m) {
		if (typeof v !== "object" || Array.isArray(v))
			errs.push(`${where}: a map expected`);
		else
			for (const k of Object.keys(v))
				walk(v[k], m[1], `${where}.${k}`, errs);
		return;
	}
	const scalar = {
		string: (x) => typeof x === "string",
		number: (x) => typeof x === "number",
		boolean: (x) => typeof x === "boolean",
		Date: (x) => typeof x === "string",
		IntOrString: (x) => typeof x === "string" || Number.isInteger(x),
		any: () => true,
		object: () => true,
	};
	if (scalar[type]) {
		if (!scalar[type](v))
			errs.push(`${where}: ${JSON.stringify(v)} is not a ${type}`);
		return;
	}
	const cls = models[type];
	if (!cls || typeof cls.getAttributeTypeMap !== "function") {
		// Enumerations are generated as string types of their own.
		if (typeof v !== "string")
			errs.push(`${where}: ${JSON.stringify(v)} is not a ${type}`);
		return;
	}
	if (typeof v !== "object" || Array.isArray(v)) {
		errs.push(`${where}: an object (${type}) expected`);
		return;
	}
	const fields = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
	for (const k of Object.keys(v)) {
		if (!fields.has(k))
			errs.push(`${where}.${k}: unknown field of ${type}`);
		else
			walk(v[k], fields.get(k), `${where}.${k}`, errs);
	}
}

let n = 0, failed = 0;
for (const { file, doc } of docs) {
	const av = doc.apiVersion || "";
	const group = av.includes("/") ? av.split("/")[0] : "";
	const version = av.split("/").pop();
	const type = (group ? group.split(".")[0].replace(/^./, (c) => c.toUpperCase()) : "")
		.replace(/^Apps$/, "") + version.replace(/^./, (c) => c.toUpperCase()) + doc.kind;
	const name = (doc.metadata && doc.metadata.name) || "";
	n++;
	if (!models[type] || !["", "apps"].includes(group)) {
		console.log(`ok ${n} - ${file}: ${doc.kind} ${name} # SKIP not a core API type`);
		continue;
	}
	const errs = [];
	walk(doc, type, doc.kind, errs);
	if (errs.length) {
		failed++;
		console.log(`not ok ${n} - ${file}: ${doc.kind} ${name} (${type})`);
		errs.slice(0, 10).forEach((e) => console.log(`#   ${e}`));
	} else {
		console.log(`ok ${n} - ${file}: ${doc.kind} ${name} (${type}, every field known)`);
	}
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
