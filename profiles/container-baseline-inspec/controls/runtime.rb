# Runtime: the same rules as container-baseline's runtime.yml, in InSpec syntax.

control 'cb-runtime-01' do
  impact 0.7
  title 'The main process does not run as root'
  desc 'A root main process turns any remote code execution into full container control and eases breakout.'
  tag nist: %w[AC-6 CM-6], cis: '4.1', severity: 'high'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  main = processes.where { pid == 1 }
  main = processes if main.entries.empty?
  describe 'The main process user' do
    subject { main.entries.first.user }
    it { should_not eq 'root' }
  end
end

control 'cb-runtime-02' do
  impact 0.7
  title 'The main process environment holds no secrets'
  desc 'Environment variables leak through /proc, crash dumps and logs; secrets belong in mounted files.'
  tag nist: %w[IA-5 SC-28], cis: '4.10', severity: 'high'
  environ = file('/proc/1/environ')
  only_if('the main process environment is not visible on this target (/proc is not mounted in the scanned root)') { environ.exist? }
  names = environ.content.to_s.split("\0").filter_map do |kv|
    name, value = kv.split('=', 2)
    name if value && !value.empty? && name =~ ContainerChecks::SECRET_NAMES
  end
  describe 'Variables that look like secrets' do
    subject { names.sort }
    it { should be_empty }
  end
end

control 'cb-runtime-03' do
  impact 0.5
  title 'No SSH daemon runs in the container'
  desc 'Containers are entered through the runtime; an sshd is extra attack surface and bypasses audit.'
  tag nist: %w[CM-7 AC-17], severity: 'medium'
  only_if('no processes are visible on this target (/proc is not mounted in the scanned root)') { processes.entries.any? }
  describe processes(/(^|\/)sshd( |$)/) do
    it { should_not exist }
  end
end

control 'cb-runtime-04' do
  impact 0.3
  title 'The OS release is identified'
  desc 'Without os-release, vulnerability scanners cannot match packages to advisories.'
  tag nist: %w[CM-8 SI-2], severity: 'low'
  describe os do
    its('name') { should match(/^[a-z0-9._-]+$/) }
  end
  describe os do
    its('release') { should match(/^[0-9][0-9.]*$/) }
  end
end

control 'cb-runtime-05' do
  impact 0.5
  title 'No remote-login client or server packages are installed'
  desc 'telnet and rsh transmit credentials in clear text and have no place in a container image.'
  tag nist: %w[CM-7], cis: '4.3', severity: 'medium'
  %w[telnet telnetd rsh-client rsh-server].each do |name|
    describe package(name) do
      it { should_not be_installed }
    end
  end
end
