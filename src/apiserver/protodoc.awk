# protodoc.awk: the comments of proto/coracle.proto as a C table, for the
# descriptions of the OpenAPI documents (what `kubectl explain` prints).
# A comment block right above a message describes the message; one right
# above a field (or at the end of its line) describes the field. Blank
# lines and section rules (// ----) end a block.
#
# The fields whose line ends in a "+omitzero" marker (not a description)
# make a second table, obj_omitzero (see obj.h).
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
    print "/* As obj.h declares it. */"
    print "struct obj_omitzero {"
    print "    const char *msg, *field;"
    print "};"
    print "extern const struct obj_omitzero obj_omitzero[];"
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
    zero = 0
    if (match(line, /\/\/.*/)) {
        t = substr(line, RSTART + 2)
        sub(/^ /, "", t)
        if (sub(/ *\+omitzero$/, "", t))
            zero = 1
        if (t != "")
            cmt = cmt (cmt != "" ? " " : "") t
        line = substr(line, 1, RSTART - 1)
    }
    sub(/[ \t]*=.*/, "", line)
    n = split(line, w, /[ \t>]+/)
    if (zero)
        zeros = zeros sprintf("    {%s, %s},\n", cstr(msg), cstr(w[n]))
    emit(w[n])
    next
}
{ cmt = "" }
END {
    print "    {NULL, NULL, NULL},"
    print "};"
    print ""
    print "const struct obj_omitzero obj_omitzero[] = {"
    printf "%s", zeros
    print "    {NULL, NULL},"
    print "};"
}
