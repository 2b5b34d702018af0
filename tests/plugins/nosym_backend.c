/* libshimmy-backend-nosym.so: a shared object with a plugin's name but without the
   shimmy_backend_api entry point, to test that the core refuses it with a reason. */
__attribute__((visibility("default"))) int shimmy_not_the_entry_point(void) { return 0; }
