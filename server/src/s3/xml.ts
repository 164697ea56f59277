// S3 speaks XML: fast-xml-parser builds the answers (escaping every value) and parses the few request
// bodies S3 has (CompleteMultipartUpload, Delete, CreateBucketConfiguration). Bodies are read whole,
// so each is bounded: a 10,000-part completion is about 1 MB.
import { XMLBuilder, XMLParser } from "fast-xml-parser";
import { malformedXml } from "./errors.js";

export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";
export const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", suppressEmptyNode: false });
const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  // Values stay strings: an ETag or key of digits must not become a number.
  parseTagValue: false,
  trimValues: false,
  isArray: (name) => name === "Part" || name === "Object" || name === "Rule",
  processEntities: true,
  // Character references (&#34; &#x27;) are standard XML: Go's encoder writes quotes in ETags and keys so.
  htmlEntities: true,
});

export type XmlValue = string | number | boolean | undefined | XmlValue[] | { [name: string]: XmlValue };

/** One S3 XML document: `<root xmlns="…">…</root>`. */
export function xmlDocument(root: string, content: Record<string, XmlValue>, namespace = true): string {
  const body = namespace ? { "@_xmlns": S3_XMLNS, ...content } : content;
  return DECLARATION + builder.build({ [root]: body });
}

/** Parses a request body; anything that is not well-formed XML is S3's MalformedXML. */
export function parseXml(text: string): Record<string, unknown> {
  if (text.trim() === "") throw malformedXml();
  try {
    return parser.parse(text, true) as Record<string, unknown>;
  } catch {
    throw malformedXml();
  }
}
