# The modules under src/ and what each may use: DESIGN.md's "arrows go
# down" written once. CMakeLists.txt links each module's library against
# exactly these, and check_layers.cmake fails the build when a file's
# #include names any other module. Modules not written yet are listed so
# that their place is decided before their first line.
set(YJ_MODULES base net store mime auth deliver mailauth queue report smtp imap pop3 daemon cli)

set(YJ_USES_base "")
set(YJ_USES_net base)
set(YJ_USES_store base)
set(YJ_USES_mime base)
set(YJ_USES_auth base store)
set(YJ_USES_deliver base store mime)
set(YJ_USES_mailauth base net mime)
set(YJ_USES_queue base net store mime deliver)
set(YJ_USES_report base net store mime deliver mailauth)
set(YJ_USES_smtp base net store mime auth deliver mailauth)
set(YJ_USES_imap base net store mime auth deliver)
set(YJ_USES_pop3 base net store mime auth deliver)
set(YJ_USES_daemon base net store mime auth deliver mailauth queue report smtp imap pop3)
set(YJ_USES_cli base net store mime auth deliver mailauth queue report)
