# protodoc.awk: the comments of proto/coracle.proto as a C table, for the
# descriptions of the OpenAPI documents (what `kubectl explain` prints).
# A comment block right above a message describes the message; one right
# above a field (or at the end of its line) describes the field. Blank
# lines and section rules (// ----) end a block.
#
#   awk -f protodoc.awk coracle.proto > coracle_doc.c
function cstr(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/"/, "\\\"", s)
    return "\"" s "\""
}
function emit(field) {
    if (cmt != "")
        printf "    {%s, %s, %s},\n", cstr(pkg "." msg), cstr(field), cstr(cmt)
    cmt = ""
}
BEGIN {
    print "/* Generated from proto/coracle.proto by src/apiserver/protodoc.awk: do not edit. */"
    print "#include <stddef.h>"
    print ""
    print "/* As openapi.h declares it (this file is built outside src/apiserver). */"
    print "struct oapi_doc {"
    print "    const char *msg, *field, *text;"
    print "};"
    print "extern const struct oapi_doc oapi_docs[];"
    print ""
    print "const struct oapi_doc oapi_docs[] = {"
}
/^package / { pkg = $2; sub(/;.*/, "", pkg); next }
/^[ \t]*$/ { cmt = ""; next }
/^[ \t]*\/\// {
    t = $0
    sub(/^[ \t]*\/\/ ?/, "", t)
    if (t ~ /^-+/) { cmt = ""; next }
    cmt = cmt (cmt != "" ? " " : "") t
    next
}
/^message [A-Za-z0-9_]+/ { msg = $2; emit(""); next }
/^}/ { msg = ""; cmt = ""; next }
msg != "" && /^[ \t]*(optional|repeated|required|map<)/ {
    line = $0
    if (match(line, /\/\/.*/)) {
        t = substr(line, RSTART + 2)
        sub(/^ /, "", t)
        cmt = cmt (cmt != "" ? " " : "") t
        line = substr(line, 1, RSTART - 1)
    }
    sub(/[ \t]*=.*/, "", line)
    n = split(line, w, /[ \t>]+/)
    emit(w[n])
    next
}
{ cmt = "" }
END {
    print "    {NULL, NULL, NULL},"
    print "};"
}
