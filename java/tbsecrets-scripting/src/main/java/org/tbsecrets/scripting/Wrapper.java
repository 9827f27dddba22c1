package org.tbsecrets.scripting;

/** The JavaScript wrapper of a script node function (GraalJS and Nashorn). */
final class Wrapper {
    private Wrapper() {}

    /**
     * A function expression {@code (msgJson, metadataJson, msgType) → string} around the body.
     *
     * @param body the script node's function body
     * @return the wrapped source
     */
    static String wrap(String body) {
        return "(function(msgJson, metadataJson, msgType) {\n"
                + "  var r = (function(msg, metadata, msgType) {\n" + body + "\n  })(JSON.parse(msgJson), JSON.parse(metadataJson), msgType);\n"
                + "  return typeof r === 'string' ? r : JSON.stringify(r === undefined ? null : r);\n"
                + "})";
    }
}
